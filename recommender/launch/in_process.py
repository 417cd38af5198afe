"""Running a job in this process: inside a Spark session where its engine needs one, and its report
(a summary, the result line, or `error: ...` and exit code 2)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from recommender.engine import ERROR_EXIT, Job, check, execute
from recommender.launch.registry import Implementation
from recommender.result import RunResult
from recommender.spark.config import SessionConfig
from recommender.timing import PhaseTimer


def run(impl: Implementation, job: Job, session: SessionConfig = SessionConfig()) -> RunResult:
    """Run `job` on `impl`'s engine, in a Spark session (`session`) where the engine needs one;
    a job the implementation cannot run is refused before anything starts."""
    check(impl, job)
    if impl.uses_spark:
        from recommender.spark.session import run_in_session, spark_session

        with spark_session(session) as spark:
            return run_in_session(spark, impl, job)
    return execute(impl, job, PhaseTimer())


def summary(result: RunResult) -> str:
    """A few human-readable lines about a run."""
    m, c, p = result.metrics, result.counts, result.phases
    lines = [
        f"{result.impl}/{result.api} on {result.data}: {c.ratings:,} ratings, "
        f"{c.users:,} users, {c.items:,} items ({result.runtime.describe()})",
        f"  training MSE {m.train_mse:.4f}",
    ]
    if m.holdout_rmse is not None and m.holdout_mae is not None:
        lines.append(
            f"  holdout RMSE {m.holdout_rmse:.4f}, MAE {m.holdout_mae:.4f} "
            f"on {c.holdout_predictions:,} of {c.holdout:,} held-out ratings"
        )
    if result.recommended is not None and "recommend" in p:
        r = result.recommended
        lines.append(f"  top {r.k} for {r.users:,} users in {p['recommend']:.2f} s "
                     f"({r.users / max(p['recommend'], 1e-9):,.0f} users/s)")
    for name, ranked in (("ranking", m.ranking), ("most-popular baseline", m.baseline)):
        if ranked is not None:
            lines.append(f"  {name} @{ranked.k} on {ranked.users:,} users: precision {ranked.precision:.4f}, "
                         f"recall {ranked.recall:.4f}, NDCG {ranked.ndcg:.4f}, MAP {ranked.map:.4f}")
    if c.skipped_rows:
        lines.append(f"  skipped {c.skipped_rows:,} bad lines, e.g. {result.skipped_examples[0]}")
    lines.append("  phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in p.items()))
    return "\n".join(lines)


def report(compute: Callable[[], RunResult]) -> int:
    """Run `compute`; print its summary and result line (exit 0), or `error: ...` (exit 2) for
    bad input, bad options or missing files: the one place errors become exit codes."""
    try:
        result = compute()
    except (ValueError, FileNotFoundError) as error:  # BadInputError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return ERROR_EXIT
    print(summary(result))
    print(result.to_line(), flush=True)
    return 0
