"""torch-spark's first stage: read the input (Parquet row groups with pyarrow, or rows from the JVM),
check each row, and route every rating to the task that owns its user and the task that owns its item,
packed into one binary chunk per task and input batch for Spark's shuffle."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from recommender.data import parquet
from recommender.data.columns import COLUMNS, RATING
from recommender.data.parquet import RowGroup
from recommender.engine import Job
from recommender.spark.loading import (
    Loaded,
    is_parquet,
    load_df,
    parquet_row_ok,
    read_parquet,
)
from recommender.split import holdout_hash, threshold

if TYPE_CHECKING:

    pass

ARROW_BATCH = "1000000"  # rows per Arrow batch: a task's blocks arrive in few large pieces
# The side of a routed rating: a training rating by its user (0) and by its item (1); a held-out one likewise (2, 3).
BY_USER, BY_ITEM, HELD_BY_USER, HELD_BY_ITEM = SIDES = range(4)
OK = "_ok"  # a JVM-read Parquet row's verdict, a column beside user, item and rating
DTYPES = (np.int32, np.int32, np.float32)  # of user, item and rating as the routing pass packs them
# Per input file, the rows read: valid ratings and bad rows (the routing pass counts them, the stage sums them).
READ = ("rows0", "bad0", "rows1", "bad1")
WARM_UP = "torch-spark-import"  # the thread that imports torch ahead of the barrier tasks
PACKED = f"key long, code binary, {RATING} binary, " + ", ".join(f"n{s} long" for s in SIDES) + ", " + \
    ", ".join(f"{name} long" for name in READ)


def owner(ids: np.ndarray, blocks: int) -> np.ndarray:
    """The task that owns each id: a multiplicative hash (mod 2^32), so that consecutive ids spread evenly."""
    return (ids.astype(np.uint32) * np.uint32(2654435761)) % np.uint32(blocks)


@dataclass(frozen=True)
class Holdout:
    """Which routed ratings are held out: every rating of the --test file, or those `split`'s hash picks."""

    test: bool
    seed: int
    cut: int  # split.threshold of the fraction, 0 for none

    def of(self, file: int, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        if self.test or not self.cut:
            return np.full(len(user), self.test and file == 1)
        return np.asarray(holdout_hash(user.astype(np.int64), item.astype(np.int64), self.seed)) < self.cut


# One input batch as the routing pass packs it: user, item and rating, and which rows are valid ratings.
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Packer = Callable[[int, Iterable[Arrays]], Iterable[pa.RecordBatch]]


@dataclass(frozen=True)
class RowGroups:
    """A Parquet input that the routing tasks read with pyarrow, a few row groups each, checking each row
    as `parquet.valid_ids` and `valid_ratings` say: Spark's own reader hands the columns to Python row by
    row, which cost 8 s of 20M ratings here, twice the whole fit, against 1 s for this."""

    fs: pafs.FileSystem
    groups: tuple[RowGroup, ...]

    def packed(self, spark: SparkSession, file: int, pack: Packer) -> DataFrame:
        fs = self.fs

        def arrays(units: Iterable[pa.RecordBatch]) -> Iterable[Arrays]:
            for unit in units:
                for path, index in zip(unit.column("path").to_pylist(), unit.column("group").to_pylist(), strict=True):
                    with fs.open_input_file(path) as handle:
                        table = pq.ParquetFile(handle).read_row_group(index, columns=list(COLUMNS))
                    user, item, rating = (table.column(name) for name in COLUMNS)
                    ok = parquet.valid_ids(user) & parquet.valid_ids(item) & parquet.valid_ratings(rating)
                    yield _arrays(table, ok)

        sc = spark.sparkContext
        slices = max(1, min(len(self.groups), sc.defaultParallelism))
        units = sc.parallelize([(group.path, group.index) for group in self.groups], slices)
        frame = spark.createDataFrame(units, "path string, group int")
        return frame.mapInArrow(lambda units: pack(file, arrays(units)), PACKED)


@dataclass(frozen=True)
class Rows:
    """An input the JVM reads: the study's text as `load_df` checked it, or a Parquet conversion on a file
    system pyarrow has no driver for, read lazily with its rows' verdicts (OK) for the routing pass."""

    frame: DataFrame  # user, item, rating, and OK for Parquet

    def packed(self, spark: SparkSession, file: int, pack: Packer) -> DataFrame:
        checked = OK not in self.frame.columns

        def arrays(batches: Iterable[pa.RecordBatch]) -> Iterable[Arrays]:
            for batch in batches:
                yield _arrays(batch, np.ones(batch.num_rows, np.bool_) if checked else column(batch, OK, np.bool_))

        return self.frame.mapInArrow(lambda batches: pack(file, arrays(batches)), PACKED)


@dataclass(frozen=True)
class Source:
    """The routing pass's inputs (--data, then --test), each read lazily, and the text loads' counts."""

    inputs: tuple[RowGroups | Rows, ...]
    holdout: Holdout
    skipped: int
    examples: list[str]


def _scheme_less_is_local(spark: SparkSession) -> bool:
    """Whether Spark reads a path without a scheme from the local disk (fs.defaultFS file:, as in local
    mode), as pyarrow does; on YARN it means HDFS, which Spark's reader then reads."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return str(conf.get("fs.defaultFS", "file:///")).startswith("file:")


def _input(spark: SparkSession, path: str, skip_bad_rows: bool, unique_pairs: bool
           ) -> tuple[RowGroups | Rows, Loaded | None]:
    """One input file as the routing pass reads it (and the text load's counts)."""
    if not is_parquet(path):
        frame, loaded = load_df(spark, path, skip_bad_rows, unique_pairs)
        return Rows(frame.select(*COLUMNS)), loaded
    found = parquet.filesystem(path) if urlparse(path).scheme or _scheme_less_is_local(spark) else None
    if found is None:
        return Rows(read_parquet(spark, path).withColumn(OK, parquet_row_ok())), None
    return RowGroups(found[0], tuple(parquet.row_groups(path, parquet.open_ratings(path, *found)))), None


def source(spark: SparkSession, job: Job) -> Source:
    """The job's ratings (and its --test ratings) for `route`: a Parquet conversion is listed by its row
    groups and checked row by row in the routing pass; the study's text is parsed and checked by `load_df`."""
    read = [_input(spark, path, job.skip_bad_rows, job.unique_pairs)
            for path in [job.path] + ([job.test] if job.test is not None else [])]
    loads = [loaded for _, loaded in read if loaded is not None]
    holdout = Holdout(job.test is not None, job.params.seed, threshold(job.params.holdout))
    return Source(tuple(found for found, _ in read), holdout, sum(loaded.skipped for loaded in loads),
                  [example for loaded in loads for example in loaded.examples])


def column(batch: pa.RecordBatch | pa.Table, name: str, dtype: type) -> np.ndarray:
    return np.asarray(batch.column(name).to_numpy(zero_copy_only=False), dtype=dtype)


def _arrays(batch: pa.RecordBatch | pa.Table, ok: np.ndarray) -> Arrays:
    """The valid rows' user, item and rating of `batch`, and `ok`, its rows' verdicts."""
    if not ok.all():
        batch = batch.filter(pa.array(ok))
    user, item, rating = (column(batch, name, dtype) for name, dtype in zip(COLUMNS, DTYPES, strict=True))
    return user, item, rating, ok


def route(spark: SparkSession, src: Source, blocks: int, keys: list[int]) -> DataFrame:
    """Each valid rating twice, to the task that owns its user and to the task that owns its item.

    One Arrow pass packs each input batch into one row per task: a key that hash partitioning sends
    to that task, and two binary columns holding the task's ratings of the batch as numpy arrays
    (user << 31 | item as uint64; the float32 rating) ordered by side, with the side sizes. The row
    for task 0 also counts the batch's valid and bad rows per file. Spark's shuffle then moves a few
    large binary values instead of twice as many rows as ratings.
    """
    task_type = np.uint8 if len(SIDES) * blocks <= 256 else np.uint16  # small keys: numpy's radix sort
    holdout = src.holdout

    def pack(file: int, batches: Iterable[Arrays]) -> Iterable[pa.RecordBatch]:
        warm_up()
        for user, item, rating, ok in batches:
            read = [0] * len(READ)
            read[2 * file:2 * file + 2] = [len(user), len(ok) - len(user)]
            code = (user.astype(np.uint64) << np.uint64(31)) | item.astype(np.uint64)
            side = holdout.of(file, user, item).astype(np.int64) * HELD_BY_USER
            target = np.concatenate([owner(user, blocks) * len(SIDES) + side,
                                     owner(item, blocks) * len(SIDES) + side + 1]).astype(task_type)
            order = np.argsort(target, kind="stable")
            codes, ratings = np.concatenate([code, code])[order], np.concatenate([rating, rating])[order]
            sizes = np.bincount(target, minlength=len(SIDES) * blocks).reshape(blocks, len(SIDES))
            bounds = np.concatenate([[0], np.cumsum(sizes.sum(axis=1))])
            out: dict[str, object] = {
                "key": keys, "code": [codes[bounds[t]:bounds[t + 1]].tobytes() for t in range(blocks)],
                RATING: [ratings[bounds[t]:bounds[t + 1]].tobytes() for t in range(blocks)],
            }
            out |= {f"n{s}": sizes[:, s].tolist() for s in SIDES}
            out |= {name: [count] + [0] * (blocks - 1) for name, count in zip(READ, read, strict=True)}
            yield pa.RecordBatch.from_pydict(out)

    packed = [found.packed(spark, file, pack) for file, found in enumerate(src.inputs)]
    frame = packed[0] if len(packed) == 1 else packed[0].unionByName(packed[1])
    return frame.repartition(blocks, "key")


def warm_up() -> None:
    """Import torch and the solver in the background, once per Python worker: Spark reuses the
    routing pass's workers for the barrier tasks, which then find them imported."""
    if "torch" not in sys.modules and not any(t.name == WARM_UP for t in threading.enumerate()):
        threading.Thread(target=_import_solver, name=WARM_UP, daemon=True).start()


def _import_solver() -> None:
    """The modules each barrier task imports (see `trainer`)."""
    for name in ("recommender.ids", "recommender.tensor.collective", "recommender.tensor.topk"):
        importlib.import_module(name)
