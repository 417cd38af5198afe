"""torch-spark on the driver: list the input, start the one Spark job (routing stage, then the barrier
stage), and turn its rows into the run's counts, metrics and figures."""


from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import SparkSession

from recommender.data.formats import BadInputError
from recommender.engine import Job
from recommender.params import ALSParams
from recommender.result import Counts, Metrics, Ranking, Recommended
from recommender.spark.hash_keys import partition_keys
from recommender.spark.loading import (
    bad_parquet_rows,
    no_training_left,
)
from recommender.tensor.on_spark.figures import StageFigures, TaskFigures
from recommender.tensor.on_spark.routing import ARROW_BATCH, Source, route, source
from recommender.tensor.on_spark.task import COUNTED, RANKED, SCHEMA, SUMS, Wanted, from_npz, trainer
from recommender.timing import PhaseTimer

if TYPE_CHECKING:

    pass



@dataclass(frozen=True)
class Trained:
    """What the stage returns to the driver: global sums, per-task figures, factors if asked for."""

    counts: dict[str, int]  # READ, then users, items (over all ratings), train, holdout, holdout_predictions, listed
    sums: dict[str, float]  # sq (training), hsq, habs (holdout)
    ranking: Ranking | None  # the model's lists on the holdout (with top_k)
    baseline: Ranking | None  # the most-popular lists'
    k: int  # the lists' length (top_k, at most the items), 0 without top_k
    figures: StageFigures
    users: tuple[np.ndarray, np.ndarray] | None  # (sorted user ids, their factors) when asked for
    items: tuple[np.ndarray, np.ndarray] | None


def ranking_of(k: int, sums: dict[str, float], who: str) -> Ranking | None:
    """A Ranking from the all-reduced sums of `_ranked` (`who`: model or base), None without users."""
    users = sums[f"{who}_users"]
    if not users:
        return None
    return Ranking(k, int(users), *(sums[f"{who}_{name}"] / users for name in RANKED[1:]))


def _attempt(spark: SparkSession, stage: int) -> int:
    """The latest attempt of `stage` (Spark's status tracker), -1 when Spark no longer keeps it."""
    info = spark.sparkContext.statusTracker().getStageInfo(stage)
    return info.currentAttemptId if info else -1


def train(spark: SparkSession, src: Source, params: ALSParams, blocks: int, device: str = "cpu",
          wanted: Wanted = Wanted()) -> Trained:
    """Route `src` and fit, predict, evaluate and recommend in one barrier stage of
    `blocks` tasks. Where the rows read hold bad rows or no training ratings (`_check` says so) it fitted nothing."""
    sc = spark.sparkContext
    slots = sc.defaultParallelism // int(sc.getConf().get("spark.task.cpus", "1"))
    if blocks > slots:
        raise ValueError(f"torch-spark runs {blocks} tasks at once (one barrier stage) but Spark has only "
                         f"{slots} task slots: use --blocks {slots} or fewer")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", ARROW_BATCH)
    routed = route(spark, src, blocks, partition_keys(blocks))
    stage = routed.mapInArrow(trainer(params, device, wanted), SCHEMA, barrier=True)
    start = time.perf_counter()
    rows = sorted(stage.repartition(1).collect(), key=lambda row: row["task"])
    stage_s = time.perf_counter() - start
    tasks = tuple(TaskFigures(**{f.name: row[f.name] for f in fields(TaskFigures)}) for row in rows)
    first = rows[0]
    sums = {name: first[name] for name in SUMS}
    factors = wanted.factors and bool(first["user_factors"])
    return Trained(
        counts={name: int(first[name]) for name in COUNTED if name != "k"}, sums=sums,
        ranking=ranking_of(first["k"], sums, "model"), baseline=ranking_of(first["k"], sums, "base"), k=int(first["k"]),
        figures=StageFigures(tasks, _attempt(spark, tasks[0].stage), stage_s),
        users=from_npz([row["user_factors"] for row in rows]) if factors else None,
        items=from_npz([row["item_factors"] for row in rows]) if factors else None,
    )


def _check(trained: Trained, job: Job) -> None:
    """A BadInputError, naming the file, for what the stage found instead of fitting."""
    c = trained.counts
    for path, bad in ((job.path, c["bad0"]), (job.test, c["bad1"])):
        if bad:
            raise BadInputError(str(path), bad_parquet_rows(bad))
    if not c["rows0"]:
        raise BadInputError(job.path, "no ratings (the table is empty)")
    if job.test is not None and not c["rows1"]:
        raise BadInputError(job.test, "no ratings (the table is empty)")
    if not c["train"]:
        raise BadInputError(job.path, no_training_left(job.params.holdout))


def run(spark: SparkSession, job: Job, timer: PhaseTimer, report: Callable[[StageFigures], object] | None = None
        ) -> tuple[Counts, Metrics, list[str], Recommended | None]:
    """Load, then the one Spark job; `report` receives its figures, which also go to the timer's
    stream as one `ALS_STAGE {json}` line.

    The job's time is split into the phases (`StageFigures.phase_seconds`): the tasks' solve steps
    are timed inside them (the slowest task's) and the rest of the driver's wait (reading, routing,
    shuffling, launching) is load, so the phases still add up to the driver's wall time.
    """
    params = job.params
    with timer.phase("load"):
        src = source(spark, job)
    with timer.phase("fit"):
        trained = train(spark, src, params, params.blocks or spark.sparkContext.defaultParallelism,
                        job.device, Wanted.of(job))
    _check(trained, job)
    solve = trained.figures.solve_seconds()
    timer.seconds["load"] += timer.seconds["fit"] - sum(solve.values())  # read, route, shuffle, launch, meet
    timer.seconds |= solve if job.top_k else {name: s for name, s in solve.items() if name != "recommend"}
    counts = trained.counts
    evaluated = bool(params.holdout) or job.test is not None
    held = (trained.sums["hsq"], trained.sums["habs"], counts["holdout_predictions"]) if evaluated else None
    metrics = replace(Metrics.from_sums((trained.sums["sq"], counts["train"]), held), ranking=trained.ranking,
                      baseline=trained.baseline)
    timer.emit("ALS_STAGE " + json.dumps(trained.figures.extra_info()))
    if report is not None:
        report(trained.figures)
    recommended = Recommended(trained.k, counts["listed"], job.exclude_rated, job.relevance) if job.top_k else None
    return Counts(
        ratings=counts["rows0"] + counts["rows1"], skipped_rows=src.skipped, users=counts["users"],
        items=counts["items"], train=counts["train"], holdout=counts["holdout"], train_predictions=counts["train"],
        holdout_predictions=counts["holdout_predictions"],
    ), metrics, src.examples, recommended
