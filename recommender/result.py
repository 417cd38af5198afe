"""The one machine-readable result line that every implementation prints on stdout.

Format: the prefix `ALS_RESULT ` followed by one JSON object on the same line. Its schema (version
2) is `result.schema.json` beside this module: the dataclasses below write it, the Scala and Java
programs write the same keys (`scala/src/main/scala/als/Report.scala`), and `parse_result_line`
validates every line a harness reads against it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PREFIX = "ALS_RESULT "
SCHEMA = 2
SCHEMA_FILE = Path(__file__).resolve().with_name("result.schema.json")
PHASE_MARKER = "ALS_PHASE"  # `ALS_PHASE <phase> begin|end` on stderr, around each timed phase


@dataclass(frozen=True)
class Counts:
    ratings: int  # valid ratings read
    skipped_rows: int  # bad lines skipped (only with --skip-bad-rows)
    users: int
    items: int
    train: int
    holdout: int
    train_predictions: int
    holdout_predictions: int  # holdout ratings whose user and item were both seen in training


@dataclass(frozen=True)
class Ranking:
    """Ranking metrics of the top-k lists on the holdout (recommender/ranking.py defines them),
    averaged over `users`: those with a list and at least one relevant held-out item."""

    k: int
    users: int
    precision: float
    recall: float
    ndcg: float
    map: float


@dataclass(frozen=True)
class Metrics:
    train_mse: float
    holdout_rmse: float | None = None
    holdout_mae: float | None = None
    ranking: Ranking | None = None  # the model's top-k lists (with --top-k and a holdout)
    baseline: Ranking | None = None  # the most-popular baseline's, on the same users
    clip: tuple[float, float] | None = None  # holdout predictions were clipped to this scale for RMSE/MAE

    @classmethod
    def from_sums(cls, train: tuple[float, int], holdout: tuple[float, float, int] | None) -> Metrics:
        """From (sum of squared errors, n) on training and (squared, absolute, n) on the holdout."""
        mse = train[0] / train[1]
        if holdout is None or not holdout[2]:
            return cls(mse)
        sq, absolute, n = holdout
        return cls(mse, (sq / n) ** 0.5, absolute / n)


@dataclass(frozen=True)
class Recommended:
    """The recommend phase: the k best items for each of `users` users."""

    k: int
    users: int
    exclude_rated: bool  # items a user rated in training were left out of their list
    relevance: float | None = None  # held-out ratings at least this are relevant; None: every one


@dataclass(frozen=True)
class SparkRuntime:
    version: str
    master: str
    app_id: str
    default_parallelism: int


@dataclass(frozen=True)
class TorchRuntime:
    version: str
    device: str  # cpu, cuda:N
    threads: int  # intra-op CPU threads of one process (of each task, on Spark)


@dataclass(frozen=True)
class LibraryRuntime:
    """A peer library that fitted the model (recommender/peers): torch then only ranks its factors."""

    name: str
    version: str
    threads: int  # the threads it trained with


@dataclass(frozen=True)
class Runtime:
    """What ran: Spark (MLlib, and torch-spark's distribution), torch (the torch engines, and the
    peers' evaluation), a peer library, or several."""

    spark: SparkRuntime | None = None
    torch: TorchRuntime | None = None
    library: LibraryRuntime | None = None

    @property
    def parallelism(self) -> int:
        """Tasks Spark runs at once, or the fitting library's or torch process's threads."""
        if self.spark is not None:
            return self.spark.default_parallelism
        if self.library is not None:
            return self.library.threads
        return self.torch.threads if self.torch is not None else 1

    def describe(self) -> str:
        parts = []
        if self.library is not None:
            parts.append(f"{self.library.name} {self.library.version}, {self.library.threads} threads")
        if self.spark is not None:
            parts.append(f"Spark {self.spark.version}, {self.spark.master}")
        if self.torch is not None:
            parts.append(f"torch {self.torch.version} on {self.torch.device}")
        return "; ".join(parts)


@dataclass(frozen=True)
class RunResult:
    impl: str  # a name of recommender.launch.registry
    api: str  # the Spark API it used: rdd, df, or none
    data: str
    input: str
    input_bytes: int
    params: dict[str, Any]  # ALSParams, with `blocks` resolved
    counts: Counts
    metrics: Metrics
    phases: dict[str, float]  # seconds per phase, and `total`
    runtime: Runtime
    started_at: str  # UTC, ISO 8601
    skipped_examples: list[str] = field(default_factory=list)
    resources: dict[str, float] = field(default_factory=dict)  # peak memory (recommender/memory.py) and more
    recommended: Recommended | None = None  # None: no recommend phase (--top-k 0)
    schema: int = SCHEMA

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_line(self) -> str:
        return PREFIX + json.dumps(self.as_dict(), sort_keys=True, allow_nan=False)


class ResultLineError(ValueError):
    """Output that does not hold exactly one valid result line."""


@cache
def schema() -> dict[str, Any]:
    """The checked-in JSON Schema of the result line."""
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


def validate(result: object) -> dict[str, Any]:
    """`result` if it matches the schema; else a ResultLineError naming the first problem."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(result), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "the top level"
        raise ResultLineError(f"the result line does not match schema {SCHEMA} at {where}: {errors[0].message}")
    assert isinstance(result, dict)
    return result


def parse_result_line(output: str) -> dict[str, Any]:
    """The result of the single `ALS_RESULT` line in `output`, validated, as a dict."""
    lines = [line for line in output.split("\n") if line.startswith(PREFIX)]  # not splitlines: \x85 is no break
    if len(lines) != 1:
        raise ResultLineError(f"expected exactly one {PREFIX.strip()} line, found {len(lines)}")
    try:
        result = json.loads(lines[0][len(PREFIX) :])
    except json.JSONDecodeError as error:
        raise ResultLineError(f"the result line is not valid JSON: {error}") from None
    if not isinstance(result, dict):
        raise ResultLineError("the result line's JSON is not an object")
    if result.get("schema") != SCHEMA:
        raise ResultLineError(f"result schema {result.get('schema')} is not the supported {SCHEMA}")
    return validate(result)
