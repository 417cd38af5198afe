"""Running any engine of the registry inside a test, on the session's shared SparkSession or spark-submitted."""

from __future__ import annotations

import os
from typing import Any

from recommender import engine
from recommender.engine import Job
from recommender.launch import registry
from recommender.launch.submit import SHUFFLE_PARTITIONS, Launch, shuffle_partitions
from recommender.params import ALSParams
from recommender.result import RunResult
from recommender.timing import PhaseTimer

# A test's spark-submit: local[2] with the grid's shuffle partitions (Spark's 200 dwarf a test set's work).
SUBMIT = Launch(master="local[2]", cores=2, confs={SHUFFLE_PARTITIONS: str(shuffle_partitions(2))})
MACHINE_BYTES = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def plausible_peak(peak: float) -> bool:
    """A whole process's peak RSS as a real run gives it: above 10 MB (a bare Python interpreter
    peaks near 9 MB, one with pandas or a JVM far above) and below this machine's memory."""
    return 10e6 < peak < MACHINE_BYTES


def run_engine(impl: str, path: Any, api: str | None = None, params: ALSParams | None = None,
               data: str = "test", skip_bad_rows: bool = False, device: str = "cpu",
               spark: Any = None, **options: Any) -> RunResult:
    """`impl`'s result on `path`: in `spark` (the `spark` fixture) for a Spark engine; `options`
    are the Job's other fields (top_k, exclude_rated, relevance, test)."""
    implementation = registry.get(impl)
    job = Job(api or implementation.apis[-1], str(path), data, params or ALSParams(), skip_bad_rows, device,
              **options)
    if implementation.uses_spark:
        from recommender.spark.session import run_in_session

        assert spark is not None, f"{impl} needs the spark fixture"
        return run_in_session(spark, implementation, job)
    return engine.execute(implementation, job, PhaseTimer())
