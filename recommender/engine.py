"""The one engine contract: what every in-process engine is given (`Job`), what it returns
(`Outcome`), the checks before it starts, and the one place its `RunResult` is built.

An engine is a function `engine(job: Job, timer: PhaseTimer) -> Outcome`, named in the registry
(`recommender/launch/registry.py`). A Spark engine takes the active SparkSession, which
`recommender.launch.in_process` starts around it. The JVM programs honour the same contract
through their result line. This module imports neither pyspark nor torch, nor the Spark session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from recommender import memory
from recommender.launch.registry import Implementation, check_api, lacks
from recommender.params import ALSParams
from recommender.result import Counts, Metrics, Recommended, RunResult, Runtime
from recommender.timing import PhaseTimer

ERROR_EXIT = 2


@dataclass(frozen=True)
class Job:
    """One run of one engine: the input, the parameters and how to treat bad lines."""

    api: str
    path: str
    data: str  # the data set's name for the result line
    params: ALSParams
    skip_bad_rows: bool = False
    device: str = "cpu"  # torch engines: cpu, cuda or cuda:N
    threads: int | None = None  # single-node torch: intra-op threads (None: torch's default)
    top_k: int = 0  # the recommend phase's k; 0: no recommend phase
    exclude_rated: bool = True  # leave a user's training items out of their recommendations
    relevance: float | None = None  # ranking metrics: held-out ratings at least this are relevant; None: all
    test: str | None = None  # a predefined test file: the holdout instead of the hashed split
    clip: tuple[float, float] | None = None  # holdout predictions clipped to this rating scale for RMSE/MAE
    # The (user, item) pairs are known to be unique: a conversion this suite validated line by line when
    # it made it (`sources.prepare`), so the loaders skip their repeated-pair pass. A user's file: False.
    unique_pairs: bool = False

    @property
    def holdout_clip(self) -> tuple[float, float] | None:
        """The scale holdout predictions are clipped to: `clip`, or None for an implicit model, whose
        predictions are preferences, not ratings (the one place every engine reads this)."""
        return None if self.params.implicit else self.clip


@dataclass(frozen=True)
class Outcome:
    """What an engine returns; `blocks` is the block count it really used."""

    counts: Counts
    metrics: Metrics
    runtime: Runtime
    blocks: int
    skipped_examples: list[str] = field(default_factory=list)
    resources: dict[str, float] = field(default_factory=dict)
    recommended: Recommended | None = None


Engine = Callable[[Job, PhaseTimer], Outcome]


def execute(impl: Implementation, job: Job, timer: PhaseTimer) -> RunResult:
    """Run the engine of `impl` (in the active Spark session, for a Spark engine), timed by `timer`."""
    check(impl, job)
    engine: Engine = impl.load_engine()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    outcome = engine(job, timer)
    return build_result(impl.name, job, outcome, timer, started_at)


def check(impl: Implementation, job: Job) -> None:
    """A ValueError, before anything starts, for an API or a device the implementation lacks."""
    check_api(impl, job.api)
    reason = lacks(impl, job.params)
    if reason:
        raise ValueError(reason)
    if job.device != "cpu" and not job.device.startswith("cuda"):
        raise ValueError(f"--device {job.device}: expected cpu, cuda or cuda:N")
    if job.device != "cpu" and "cuda" not in impl.devices:
        raise ValueError(f"--device {job.device}: {impl.name} runs on the CPU only")
    if job.top_k < 0:
        raise ValueError(f"--top-k {job.top_k}: expected 0 (no recommend phase) or more")
    if job.top_k and not impl.recommends:
        raise ValueError(f"--top-k: the {impl.name} implementation has no recommend phase yet")
    if job.test is not None and not impl.reads_test:
        raise ValueError(f"--test: the {impl.name} implementation has no predefined test split yet")
    if job.test is not None and job.params.holdout:
        raise ValueError("--test replaces the random holdout: leave --holdout at 0")
    if job.clip is not None and not job.clip[0] < job.clip[1]:
        raise ValueError(f"--clip {job.clip[0]},{job.clip[1]}: expected LOW,HIGH with LOW < HIGH")
    if job.relevance is not None and not job.top_k:
        raise ValueError("--relevance: ranking metrics need the recommend phase (--top-k K)")


def build_result(impl: str, job: Job, outcome: Outcome, timer: PhaseTimer, started_at: str) -> RunResult:
    """The one place a `RunResult` is made; its `resources` add this process's peak RSS
    (`memory.PEAK_RSS`, read last, so it covers the whole run) to what the engine measured."""
    from recommender.data.readers import local_size

    return RunResult(
        impl=impl,
        api=job.api,
        data=job.data,
        input=job.path,
        input_bytes=local_size(job.path),
        params=asdict(replace(job.params, blocks=outcome.blocks)),
        counts=outcome.counts,
        metrics=replace(outcome.metrics, clip=job.holdout_clip),
        phases={name: round(seconds, 4) for name, seconds in timer.seconds.items()} | {"total": round(timer.total, 4)},
        runtime=outcome.runtime,
        started_at=started_at,
        skipped_examples=outcome.skipped_examples[:10],
        resources=outcome.resources | {memory.PEAK_RSS: float(memory.own_peak_rss_bytes())},
        recommended=outcome.recommended,
    )
