"""`impl torch-spark`: the `torch_als` solver, distributed by Spark.

The training ratings cross from the JVM to Python once (Arrow, `mapInPandas`), are indexed,
partitioned by user and by item with Spark's shuffle, sorted once and cached as numpy blocks. Each
half-iteration broadcasts the fixed side's factors, every partition solves its own rows on its
executor's device, and the driver collects the new factors to broadcast them back. Spark does the
distribution; this module adds only the per-partition solve.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark import RDD, Broadcast
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recommender.data.columns import ITEM, RATING, USER
from recommender.params import ALSParams
from recommender.result import Counts, Metrics
from recommender.spark.df import errors, split
from recommender.spark.loading import load_df
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
        from recommender.tensor.single import lookup

        users, items = ids.value
        for batch in batches:
            yield pd.DataFrame({
                "u": lookup(users, batch[USER].to_numpy(np.int64)).astype(np.int32),
                "i": lookup(items, batch[ITEM].to_numpy(np.int64)).astype(np.int32),
                "r": batch[RATING].astype(np.float32),
            })

    return frame.mapInPandas(add, "u int, i int, r float")


@dataclass(frozen=True)
class Block:
    """The ratings of one partition, sorted by row, ready for `torch_als.make_side`."""

    ids: np.ndarray  # the partition's rows (compact indices of the solved side), ascending
    rows: np.ndarray  # int32, each rating's position in `ids`, ascending
    cols: np.ndarray  # int32, the other side's compact indices
    ratings: np.ndarray  # float32

    @classmethod
    def build(cls, keys: np.ndarray, cols: np.ndarray, ratings: np.ndarray) -> Block:
        from recommender.tensor.single import compact

        order = np.argsort(keys, kind="stable")
        ids, rows = compact(keys[order].astype(np.int64))
        return cls(ids, rows, cols[order], ratings[order])


def _chunks(train: DataFrame, ids: Broadcast) -> RDD[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The training ratings as (user, item, rating) numpy chunks with compact indices.

    The only pass through Arrow: everything after it moves numpy arrays, not rows.
    """

    def pack(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from recommender.tensor.single import lookup

        user_ids, item_ids = ids.value
        for batch in batches:
            arrays = (lookup(user_ids, batch[USER].to_numpy(np.int64)).astype(np.int32),
                      lookup(item_ids, batch[ITEM].to_numpy(np.int64)).astype(np.int32),
                      batch[RATING].to_numpy(np.float32))
            yield pd.DataFrame({"chunk": [pickle.dumps(arrays, protocol=5)]})

    return train.mapInPandas(pack, "chunk binary").rdd.map(lambda row: pickle.loads(row.chunk))


def _blocks(chunks: RDD[tuple[np.ndarray, np.ndarray, np.ndarray]], by_item: bool,
            blocks: int) -> RDD[Block]:
    """The ratings partitioned by user (or item), sorted and cached as numpy blocks.

    Spark's shuffle (`partitionBy`) moves each chunk's pieces to the partition of their rows;
    every half-iteration then reuses the cached blocks as they are.
    """
    key = 1 if by_item else 0

    def split(chunk: tuple[np.ndarray, ...]) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        target = chunk[key] % blocks
        for part in range(blocks):
            mask = target == part
            if mask.any():
                yield part, (chunk[key][mask], chunk[1 - key][mask], chunk[2][mask])

    def combine(pieces: Iterator[tuple[int, tuple[np.ndarray, ...]]]) -> Iterator[Block]:
        parts = [piece for _, piece in pieces]
        if parts:
            yield Block.build(*(np.concatenate([p[n] for p in parts]) for n in range(3)))

    shuffled = chunks.flatMap(split).partitionBy(blocks, lambda part: part)
    return shuffled.mapPartitions(combine, preservesPartitioning=True).cache()


def _solve(blocks: RDD[Block], fixed: np.ndarray, n_rows: int, reg: float, device: str,
           spark: SparkSession) -> np.ndarray:
    """One half-iteration: every block's rows solved against the broadcast `fixed` factors."""
    shared = spark.sparkContext.broadcast(fixed)

    def solve(block: Block) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from recommender.tensor import als as torch_als

        _set_threads()
        where = torch.device(_task_device(device))
        side = torch_als.make_side(torch.from_numpy(block.rows).to(where), torch.from_numpy(block.cols).to(where),
                                   torch.from_numpy(block.ratings).to(where), len(block.ids), len(shared.value))
        solved = torch_als.solve_side(side, torch.from_numpy(shared.value).to(where), reg)
        return block.ids, solved.cpu().numpy()

    factors = np.zeros((n_rows, fixed.shape[1]), dtype=np.float32)
    for ids, solved in blocks.map(solve).collect():
        factors[ids] = solved
    shared.unpersist()
    return factors


def _predict_blocks(by_user: RDD[Block], users: np.ndarray, items: np.ndarray,
                    spark: SparkSession) -> RDD[tuple[np.ndarray, np.ndarray]]:
    """(ratings, predictions) of every training rating, block by block."""
    factors = spark.sparkContext.broadcast((users, items))

    def predict(block: Block) -> tuple[np.ndarray, np.ndarray]:
        u_f, i_f = factors.value
        return block.ratings, (u_f[block.ids[block.rows]] * i_f[block.cols]).sum(axis=1)

    return by_user.map(predict)


def _block_errors(predictions: RDD[tuple[np.ndarray, np.ndarray]]) -> tuple[float, int]:
    """(sum of squared errors, count) over every block, in double precision."""
    def block(pair: tuple[np.ndarray, np.ndarray]) -> tuple[float, int]:
        diff = pair[1].astype(np.float64) - pair[0]
        return float(diff @ diff), len(diff)

    return predictions.map(block).reduce(lambda a, b: (a[0] + b[0], a[1] + b[1]))


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
    from recommender.tensor import als as torch_als

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", ARROW_BATCH)
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    blocks = params.blocks or spark.sparkContext.defaultParallelism
    with timer.phase("load"):
        ratings, loaded = load_df(spark, path, skip_bad_rows)
    train, holdout, _ = split(ratings, params)

    with timer.phase("fit"):
        user_ids = np.sort(train.select(USER).distinct().toPandas()[USER].to_numpy(np.int64))
        item_ids = np.sort(train.select(ITEM).distinct().toPandas()[ITEM].to_numpy(np.int64))
        chunks = _chunks(train, spark.sparkContext.broadcast((user_ids, item_ids))).cache()
        by_user, by_item = _blocks(chunks, False, blocks), _blocks(chunks, True, blocks)
        by_user.count(), by_item.count()
        chunks.unpersist()
        users = torch_als.initial_factors(len(user_ids), params.rank, params.seed, "cpu").numpy()
        for _ in range(params.iterations):
            items = _solve(by_item, users, len(item_ids), params.reg, device, spark)
            users = _solve(by_user, items, len(user_ids), params.reg, device, spark)

    with timer.phase("predict"):
        train_pred = _predict_blocks(by_user, users, items, spark).cache()
        n_train = train_pred.map(lambda pair: len(pair[0])).sum()
        held_pred, n_held = None, 0
        if holdout is not None:
            held_pred = _predict(_index(holdout, user_ids, item_ids, spark), users, items, spark).cache()
            n_held = held_pred.count()
    with timer.phase("evaluate"):
        sq, n = _block_errors(train_pred)
        metrics = Metrics.from_sums((sq, n), errors(held_pred) if held_pred is not None and n_held else None)

    sizes = ratings.agg(F.countDistinct(USER).alias("users"), F.countDistinct(ITEM).alias("items")).first()
    assert sizes is not None
    n_holdout = holdout.count() if holdout is not None else 0
    counts = Counts(
        ratings=loaded.ratings, skipped_rows=loaded.skipped, users=sizes["users"],
        items=sizes["items"], train=loaded.ratings - n_holdout, holdout=n_holdout,
        train_predictions=n_train, holdout_predictions=n_held,
    )
    for cached in (by_user, by_item, train_pred):
        cached.unpersist()
    return counts, metrics, loaded.examples
