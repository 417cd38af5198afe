"""`impl torch-spark`: the `torch_als` solver, distributed by Spark.

The training ratings are partitioned by user and by item and cached. Each half-iteration
broadcasts the fixed side's factors, every partition solves its own rows on its executor's device
(`mapInPandas`), and the driver collects the new factors to broadcast them back. Spark does the
distribution; this module adds only the per-partition solve.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recommender.als_df import _errors
from recommender.loading import load_df
from recommender.params import ALSParams
from recommender.ratings_io import ITEM, RATING, USER
from recommender.result import Counts, Metrics
from recommender.split import holdout_sql, threshold
from recommender.timing import PhaseTimer

ARROW_BATCH = "1000000"  # rows per Arrow batch: a partition arrives in few large pieces


def _task_device(name: str) -> str:
    """The task's own GPU when Spark assigned one (spark.task.resource.gpu.amount), else `name`."""
    from pyspark import TaskContext

    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context else None
    if name.startswith("cuda") and gpus and gpus.addresses:
        return f"cuda:{gpus.addresses[0]}"
    return name


def _set_threads() -> None:
    """One task, its own cores: torch must not spread over the executor's other task slots."""
    import torch
    from pyspark import TaskContext

    context = TaskContext.get()
    torch.set_num_threads(max(1, context.cpus() if context else 1))


def _index(frame: DataFrame, user_ids: np.ndarray, item_ids: np.ndarray, spark: SparkSession) -> DataFrame:
    """Add each rating's compact user and item index (`u`, `i`); -1 for ids not in training."""
    ids = spark.sparkContext.broadcast((user_ids, item_ids))

    def add(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from recommender.torch_engine import lookup

        users, items = ids.value
        for batch in batches:
            yield pd.DataFrame({
                "u": lookup(users, batch[USER].to_numpy(np.int64)).astype(np.int32),
                "i": lookup(items, batch[ITEM].to_numpy(np.int64)).astype(np.int32),
                "r": batch[RATING].astype(np.float32),
            })

    return frame.mapInPandas(add, "u int, i int, r float")


def _solve(frame: DataFrame, key: str, other: str, fixed: np.ndarray, n_rows: int,
           reg: float, device: str, spark: SparkSession) -> np.ndarray:
    """One half-iteration: the factors of every `key` row against the broadcast `fixed` ones."""
    rank = fixed.shape[1]
    shared = spark.sparkContext.broadcast(fixed)
    columns = [f"f{j}" for j in range(rank)]

    def solve(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import torch

        from recommender import torch_als
        from recommender.torch_engine import compact

        parts = list(batches)
        if not parts or not sum(len(p) for p in parts):
            return
        part = pd.concat(parts, ignore_index=True)
        _set_threads()
        where = torch.device(_task_device(device))
        rows, local = compact(part[key].to_numpy(np.int64))
        side = torch_als.make_side(
            torch.from_numpy(local).to(where),
            torch.from_numpy(part[other].to_numpy(np.int32)).to(where),
            torch.from_numpy(part["r"].to_numpy(np.float32)).to(where),
            len(rows), len(shared.value),
        )
        solved = torch_als.solve_side(side, torch.from_numpy(shared.value).to(where), reg).cpu().numpy()
        out = pd.DataFrame(solved, columns=columns)
        out.insert(0, "row", rows.astype(np.int32))
        yield out

    schema = "row int, " + ", ".join(f"{c} float" for c in columns)
    result = frame.mapInPandas(solve, schema).toPandas()
    shared.unpersist()
    factors = np.zeros((n_rows, rank), dtype=np.float32)
    factors[result["row"].to_numpy()] = result[columns].to_numpy(np.float32)
    return factors


def _predict(frame: DataFrame, users: np.ndarray, items: np.ndarray, spark: SparkSession) -> DataFrame:
    """(rating, prediction) of every indexed rating whose user and item were both trained."""
    factors = spark.sparkContext.broadcast((users, items))

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        u_f, i_f = factors.value
        for batch in batches:
            known = batch[(batch.u >= 0) & (batch.i >= 0)]
            pred = (u_f[known.u.to_numpy()] * i_f[known.i.to_numpy()]).sum(axis=1)
            yield pd.DataFrame({RATING: known.r.to_numpy(), "prediction": pred})

    return frame.mapInPandas(predict, f"{RATING} float, prediction float")


def run(spark: SparkSession, path: str, params: ALSParams, skip_bad_rows: bool, timer: PhaseTimer,
        device: str = "cpu") -> tuple[Counts, Metrics, list[str]]:
    """Load, fit, predict and evaluate, each phase forced by an action and timed."""
    from recommender import torch_als

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", ARROW_BATCH)
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    blocks = params.blocks or spark.sparkContext.defaultParallelism
    with timer.phase("load"):
        ratings, loaded = load_df(spark, path, skip_bad_rows)
    cut = threshold(params.holdout)
    held = F.expr(holdout_sql(USER, ITEM, params.seed)) < cut
    train = ratings.filter(~held) if cut else ratings

    with timer.phase("fit"):
        user_ids = np.sort(train.select(USER).distinct().toPandas()[USER].to_numpy(np.int64))
        item_ids = np.sort(train.select(ITEM).distinct().toPandas()[ITEM].to_numpy(np.int64))
        indexed = _index(train, user_ids, item_ids, spark)
        by_user = indexed.repartition(blocks, "u").cache()
        by_item = indexed.repartition(blocks, "i").cache()
        by_user.count(), by_item.count()
        users = torch_als.initial_factors(len(user_ids), params.rank, params.seed, "cpu").numpy()
        for _ in range(params.iterations):
            items = _solve(by_item, "i", "u", users, len(item_ids), params.reg, device, spark)
            users = _solve(by_user, "u", "i", items, len(user_ids), params.reg, device, spark)

    with timer.phase("predict"):
        train_pred = _predict(by_user, users, items, spark).cache()
        n_train = train_pred.count()
        held_pred, n_held = None, 0
        if cut:
            held_pred = _predict(_index(ratings.filter(held), user_ids, item_ids, spark), users,
                                 items, spark).cache()
            n_held = held_pred.count()
    with timer.phase("evaluate"):
        sq, _, n = _errors(train_pred)
        metrics = Metrics(train_mse=sq / n)
        if held_pred is not None and n_held:
            hsq, habs, hn = _errors(held_pred)
            metrics.holdout_rmse, metrics.holdout_mae = (hsq / hn) ** 0.5, habs / hn

    sizes = ratings.agg(F.countDistinct(USER).alias("users"), F.countDistinct(ITEM).alias("items")).first()
    assert sizes is not None
    n_holdout = ratings.filter(held).count() if cut else 0
    counts = Counts(
        ratings=loaded.ratings, skipped_rows=loaded.skipped, users=sizes["users"],
        items=sizes["items"], train=loaded.ratings - n_holdout, holdout=n_holdout,
        train_predictions=n_train, holdout_predictions=n_held,
    )
    for frame in (by_user, by_item, train_pred):
        frame.unpersist()
    return counts, metrics, loaded.examples
