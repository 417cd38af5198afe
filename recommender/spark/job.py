"""One recommender run on an open SparkSession: the chosen API, timed, as a `RunResult`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from recommender.data.formats import BadInputError
from recommender.params import ALSParams
from recommender.result import Counts, Metrics, RunResult, SparkInfo
from recommender.spark import df as als_df
from recommender.spark import rdd as als_rdd
from recommender.spark.loading import local_size
from recommender.timing import PhaseTimer

Engine = Callable[[SparkSession, str, ALSParams, bool, PhaseTimer], tuple[Counts, Metrics, list[str]]]
APIS: dict[str, Engine] = {"rdd": als_rdd.run, "df": als_df.run}


def run_job(
    spark: SparkSession,
    path: str,
    api: str,
    params: ALSParams,
    data_name: str | None = None,
    skip_bad_rows: bool = False,
    engine: Engine | None = None,
    impl: str = "python",
) -> RunResult:
    """Run the `api` recommender (or `engine`, for another implementation) on `path`."""
    if engine is None and api not in APIS:
        raise ValueError(f"unknown API {api!r}; choose from {sorted(APIS)}")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    timer = PhaseTimer(emit=spark.sparkContext._jvm.System.err.println)  # type: ignore[union-attr]
    counts, metrics, examples = (engine or APIS[api])(spark, path, params, skip_bad_rows, timer)
    sc = spark.sparkContext
    resolved = asdict(params) | {"blocks": params.blocks or sc.defaultParallelism}
    return RunResult(
        impl=impl,
        api=api,
        data=data_name or path,
        input=path,
        input_bytes=local_size(path),
        params=resolved,
        counts=counts,
        metrics=metrics,
        phases={name: round(seconds, 4) for name, seconds in timer.seconds.items()}
        | {"total": round(timer.total, 4)},
        spark=SparkInfo(
            version=spark.version,
            master=sc.master,
            app_id=sc.applicationId,
            default_parallelism=sc.defaultParallelism,
        ),
        started_at=started_at,
        skipped_examples=examples,
    )


def summary(result: RunResult) -> str:
    """A few human-readable lines about a run."""
    m, c, p = result.metrics, result.counts, result.phases
    lines = [
        f"{result.impl}/{result.api} on {result.data}: {c.ratings:,} ratings, "
        f"{c.users:,} users, {c.items:,} items (Spark {result.spark.version}, {result.spark.master})",
        f"  training MSE {m.train_mse:.4f}",
    ]
    if m.holdout_rmse is not None and m.holdout_mae is not None:
        lines.append(
            f"  holdout RMSE {m.holdout_rmse:.4f}, MAE {m.holdout_mae:.4f} "
            f"on {c.holdout_predictions:,} of {c.holdout:,} held-out ratings"
        )
    if c.skipped_rows:
        lines.append(f"  skipped {c.skipped_rows:,} bad lines, e.g. {result.skipped_examples[0]}")
    lines.append("  phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in p.items()))
    return "\n".join(lines)


def print_result(compute: Callable[[], RunResult]) -> int:
    """Run `compute` and print its summary and result line: exit 0, or 2 with `error: ...` for bad input."""
    try:
        result = compute()
    except (BadInputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(result))
    print(result.to_line(), flush=True)
    return 0
