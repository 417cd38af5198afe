"""`impl torch-spark`: the `tensor.als` solver, the whole fit in one Spark barrier stage.

One Spark job. Its shuffle-map stage reads the input (the Parquet conversion's row groups with
pyarrow, checked row by row in the same pass, or the study's text as `load_df` checked it) and routes each
rating once to the task that owns its user and once to the task that owns its item (a hash of the
id picks the task; holdout or `--test` ratings travel the same way), packed per input batch into
one binary chunk per task. Each barrier task keeps its user block and item block as torch tensors,
on its own GPU where Spark assigned one, for the whole fit. Every half-iteration each task solves
its rows (`als.solve_side`) and torch.distributed all-gathers the solved side (`tensor.collective`).
Predict, evaluate and recommend (each task's users' top-k against the gathered item factors, and
their ranking metrics) run in the same tasks; their sums are all-reduced, so only one small row
per task, and the factors only when asked for, cross back to the driver.

Phases (`run`): load is the driver's wait until every task holds its ratings and the group has met
(the Parquet read and check, the routing pass and shuffle write, the tasks' launch, imports and
shuffle read); fit is the tasks' setup (id exchange, CSR blocks) and iterations; predict, evaluate
and recommend are the tasks' own steps. Each of those is the slowest task's; load is the rest.

Barrier mode, and why `DataFrame.mapInArrow(..., barrier=True)`: Spark's `TorchDistributor`
runs `sc.parallelize(range(n), n).barrier().mapPartitions(...)` and starts `torchrun` in each
task, which suits a training script that reads its own data, not data Spark already holds.
spark-rapids-ml feeds the data in: `df.mapInPandas(train).rdd.barrier().mapPartitions(identity)`,
whose results leave through pickled Python rows into a `collect()`. The barrier flag on
`mapInArrow` (Spark 3.5+) does the same in one call and keeps Arrow on both sides, and its result
stays a DataFrame: a `repartition(1)` after it makes the barrier stage a shuffle-map stage, which
Spark retries as a whole when a task fails (a failed barrier result stage is never retried).
Each task starts from the same seeded factors and solves the same rows as the single-node engine,
so the model equals its model up to the order of float32 sums.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark import BarrierTaskContext
from pyspark.sql import DataFrame, SparkSession

from recommender.data import parquet
from recommender.data.columns import COLUMNS, RATING
from recommender.data.formats import BadInputError
from recommender.data.parquet import RowGroup
from recommender.engine import Job
from recommender.params import ALSParams
from recommender.result import Counts, Metrics, Ranking, Recommended
from recommender.spark.hash_keys import partition_keys
from recommender.spark.loading import (
    Loaded,
    bad_parquet_rows,
    is_parquet,
    load_df,
    no_training_left,
    parquet_row_ok,
    read_parquet,
)
from recommender.split import holdout_hash, threshold
from recommender.timing import PhaseTimer

if TYPE_CHECKING:
    import torch

    from recommender.tensor.als import Side
    from recommender.tensor.collective import Group

PREDICT_CHUNK = 1 << 18  # ratings predicted at a time: the gathered factor rows stay in cache
TOP_K_CHUNK_BYTES = 64 << 20  # one top-k chunk's scores: a task's blocks share its executor's memory
IN_PLACE_BLOCK = 1 << 22  # ids rewritten in place this many at a time
ARROW_BATCH = "1000000"  # rows per Arrow batch: a task's blocks arrive in few large pieces
FAIL_PROPERTY = "recommender.torch_spark.fail"  # test hook, a Spark local property: see `_fail_for_test`
# The side of a routed rating: a training rating by its user (0) and by its item (1); a held-out one likewise (2, 3).
BY_USER, BY_ITEM, HELD_BY_USER, HELD_BY_ITEM = SIDES = range(4)
OK = "_ok"  # a JVM-read Parquet row's verdict, a column beside user, item and rating
DTYPES = (np.int32, np.int32, np.float32)  # of user, item and rating as the routing pass packs them
# Per input file, the rows read: valid ratings and bad rows (the routing pass counts them, the stage sums them).
READ = ("rows0", "bad0", "rows1", "bad1")
WARM_UP = "torch-spark-import"  # the thread that imports torch ahead of the barrier tasks
RANKED = ("users", "precision", "recall", "ndcg", "map")  # a Ranking's user-weighted sums, all-reduced


@dataclass(frozen=True)
class Wanted:
    """What the stage computes besides the fit and the rating errors (the Job's options)."""

    top_k: int = 0  # the recommend phase's k, 0 for none
    exclude_rated: bool = True
    relevance: float | None = None
    clip: tuple[float, float] | None = None  # holdout predictions clipped to this scale for RMSE/MAE
    factors: bool = False  # the factors back to the driver

    @classmethod
    def of(cls, job: Job) -> Wanted:
        return cls(job.top_k, job.exclude_rated, job.relevance, job.clip)


@dataclass(frozen=True)
class TaskFigures:
    """What one barrier task held, its memory and how long its steps took (seconds)."""

    task: int  # its partition, the rank in the process group
    stage: int  # the Spark stage id, to look its attempts up
    rows: int  # ratings this task received: its user block, item block and holdout
    held_bytes: int  # those rows unpacked: int32 user and item, float32 rating
    tensor_bytes: int  # the blocks and factor matrices it kept as torch tensors
    start_rss_bytes: int  # resident memory of its Python worker once torch is imported, before the data
    peak_rss_bytes: int  # peak resident memory of its Python worker process during the task
    peak_device_bytes: int  # peak CUDA memory, 0 on the CPU
    import_s: float  # torch and this package: what is left of `warm_up`'s import when the task starts
    read_s: float  # shuffle read and the chunks to numpy (the process group's rendezvous runs meanwhile)
    meet_s: float  # the rendezvous left after the read, and the read counts' sum: waits for the slowest reader
    setup_s: float  # id exchange, indexing and CSR blocks
    fit_s: float
    predict_s: float  # the predictions and their errors, a chunk at a time (never all at once)
    evaluate_s: float  # the errors' sums and counts all-reduced, and the ranking metrics
    recommend_s: float


@dataclass(frozen=True)
class StageFigures:
    """The barrier stage as a whole, for the result's `resources`."""

    tasks: tuple[TaskFigures, ...]
    attempt: int  # the stage attempt that succeeded: > 0 after Spark retried the stage
    stage_s: float  # the driver's wait for the job: read, route, shuffle, launch and the barrier stage

    def solve_seconds(self) -> dict[str, float]:
        """The phases the tasks time once they hold their ratings, each the slowest task's."""
        def slowest(step: Callable[[TaskFigures], float]) -> float:
            return max(step(task) for task in self.tasks)

        return {"fit": slowest(lambda t: t.setup_s + t.fit_s), "predict": slowest(lambda t: t.predict_s),
                "evaluate": slowest(lambda t: t.evaluate_s), "recommend": slowest(lambda t: t.recommend_s)}

    def extra_info(self) -> dict[str, float | int]:
        """Per-executor memory (peak RSS absolute, and above the worker's RSS after imports, against
        the ratings' bytes held) and where the stage's load time went (the slowest task's steps)."""
        def slowest(name: str) -> float:
            return round(max(getattr(task, name) for task in self.tasks), 4)

        above = [t.peak_rss_bytes - t.start_rss_bytes for t in self.tasks]
        return {
            "tasks": len(self.tasks),
            "stage_attempt": self.attempt,
            "peak_rss_bytes_max": max(t.peak_rss_bytes for t in self.tasks),
            "peak_rss_above_start_bytes_max": max(above),
            "start_rss_bytes_max": max(t.start_rss_bytes for t in self.tasks),
            "peak_device_bytes_max": max(t.peak_device_bytes for t in self.tasks),
            "held_bytes_max": max(t.held_bytes for t in self.tasks),
            "tensor_bytes_max": max(t.tensor_bytes for t in self.tasks),
            "peak_rss_per_held_byte": round(max(t.peak_rss_bytes / max(t.held_bytes, 1) for t in self.tasks), 3),
            "rss_growth_per_held_byte": round(max(a / max(t.held_bytes, 1) for a, t in zip(above, self.tasks,
                                                                                           strict=True)), 3),
            "stage_load_s": round(self.stage_s - sum(self.solve_seconds().values()), 4),
            "task_import_s": slowest("import_s"),
            "task_read_s": slowest("read_s"),
            "task_meet_s": slowest("meet_s"),
            "task_setup_s": slowest("setup_s"),
            "task_fit_s": slowest("fit_s"),
        }


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


COUNTED = (*READ, "users", "items", "train", "holdout", "holdout_predictions", "listed", "k")
SUMS = ("sq", "hsq", "habs", *(f"{who}_{name}" for who in ("model", "base") for name in RANKED))
OUTPUT = ([(name, "long") for name in COUNTED] + [(name, "double") for name in SUMS]
          + [(f.name, "double" if f.type == "float" else "long") for f in fields(TaskFigures)]
          + [("user_factors", "binary"), ("item_factors", "binary")])  # a task's one row
SCHEMA = ", ".join(f"{name} {kind}" for name, kind in OUTPUT)
ARROW_TYPES = {"long": pa.int64(), "double": pa.float64(), "binary": pa.binary()}
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
                yield _arrays(batch, np.ones(batch.num_rows, np.bool_) if checked else _column(batch, OK, np.bool_))

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


def _column(batch: pa.RecordBatch | pa.Table, name: str, dtype: type) -> np.ndarray:
    return np.asarray(batch.column(name).to_numpy(zero_copy_only=False), dtype=dtype)


def _arrays(batch: pa.RecordBatch | pa.Table, ok: np.ndarray) -> Arrays:
    """The valid rows' user, item and rating of `batch`, and `ok`, its rows' verdicts."""
    if not ok.all():
        batch = batch.filter(pa.array(ok))
    user, item, rating = (_column(batch, name, dtype) for name, dtype in zip(COLUMNS, DTYPES, strict=True))
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
    """The modules each barrier task imports (see `_trainer`)."""
    for name in ("recommender.tensor.collective", "recommender.tensor.single", "recommender.tensor.topk"):
        importlib.import_module(name)


def _fail_for_test(context: BarrierTaskContext) -> None:
    """The failure tests' hook, off unless the driver sets local property `FAIL_PROPERTY`: "raise"
    makes task 1 raise on every stage attempt; "kill:PATH" makes it kill its own Python worker
    once, the first time it finds no file at PATH (it creates one first)."""
    mode = context.getLocalProperty(FAIL_PROPERTY)
    if context.partitionId() != 1 or not mode:
        return
    if mode == "raise":
        raise RuntimeError("torch-spark test hook: task 1 raises")
    if mode.startswith("kill:"):
        marker = mode.removeprefix("kill:")
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Block:
    """One side's ratings in a task (numpy, freed field by field as the setup consumes them)."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.user.nbytes + self.item.nbytes + self.rating.nbytes


def _values(column: pa.Array, dtype: type) -> np.ndarray:
    """All values of a binary column's rows as one numpy array, without copying (Arrow's data buffer)."""
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset:column.offset + len(column) + 1]
    size = np.dtype(dtype).itemsize
    if offsets[-1] == offsets[0]:
        return np.empty(0, dtype)
    return np.frombuffer(column.buffers()[2], dtype, count=(offsets[-1] - offsets[0]) // size, offset=int(offsets[0]))


def _read(batches: Iterable[pa.RecordBatch]) -> tuple[list[Block], list[int]]:
    """The task's shuffled chunks as one `Block` per side, and the read counts its chunks carry.

    The Arrow batches are kept as they arrive (12 bytes a rating) until the side sizes are known;
    then each side's arrays are allocated once and filled from the batches, each batch released to
    the OS once unpacked, so the peak is about the bytes held (joined pieces would hold them twice:
    the C heap keeps freed pieces).
    """
    arrived: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # codes, ratings, sizes (records x sides)
    read = np.zeros(len(READ), dtype=np.int64)
    for batch in batches:
        sizes = np.stack([_column(batch, f"n{s}", np.int64) for s in SIDES], axis=1)
        arrived.append((_values(batch.column("code"), np.uint64), _values(batch.column(RATING), np.float32), sizes))
        read += np.stack([_column(batch, name, np.int64) for name in READ]).sum(axis=1)
        del batch
    totals = sum((sizes.sum(axis=0) for _, _, sizes in arrived), np.zeros(len(SIDES), np.int64))
    blocks = [Block(np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.float32)) for n in totals.tolist()]
    filled = [0] * len(SIDES)
    mask, shift = np.uint64((1 << 31) - 1), np.uint64(31)
    pool = pa.default_memory_pool()
    while arrived:
        codes, ratings, sizes = arrived.pop(0)
        at = 0
        for side, size in zip(np.tile(np.arange(len(SIDES)), len(sizes)).tolist(), sizes.reshape(-1).tolist(),
                              strict=True):
            block, into = blocks[side], slice(filled[side], filled[side] + size)
            np.right_shift(codes[at:at + size], shift, out=block.user[into], casting="unsafe")
            np.bitwise_and(codes[at:at + size], mask, out=block.item[into], casting="unsafe")
            block.rating[into] = ratings[at:at + size]
            filled[side], at = filled[side] + size, at + size
        del codes, ratings
        pool.release_unused()  # Arrow's pool is not the heap numpy and torch allocate from
    return blocks, read.tolist()


def _npy(ids: np.ndarray, factors: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, ids=ids, factors=factors)
    return out.getvalue()


def _from_npy(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    parts = [np.load(io.BytesIO(blob)) for blob in blobs]
    ids = np.concatenate([p["ids"] for p in parts])
    factors = np.concatenate([p["factors"] for p in parts])
    order = np.argsort(ids)
    return ids[order], factors[order]


def _positions(ids: np.ndarray, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Each of `values`' index in sorted `ids`, where all are present: a lookup table for dense ids.
    With `out` (int32, as long as `values`; `values` itself will do) they are written there, a block at a time."""
    dense = bool(len(ids)) and int(ids[-1]) <= 50 * max(len(values), len(ids))
    if dense:
        table = np.zeros(int(ids[-1]) + 1, dtype=np.int32)
        table[ids] = np.arange(len(ids), dtype=np.int32)
    if out is None:
        return table[values] if dense else np.searchsorted(ids, values).astype(np.int32)
    for start in range(0, len(values), IN_PLACE_BLOCK):
        part = slice(start, start + IN_PLACE_BLOCK)
        if dense:
            np.take(table, values[part], out=out[part])
        else:
            out[part] = np.searchsorted(ids, values[part])
    return out


class _Rows:
    """The row index of each rating of a CSR side, in its order, sliced on demand (it is never built
    whole); a side in column blocks (`Side.blocks`) stacks its rows once per block."""

    def __init__(self, side: Side) -> None:
        self.crow = side.indicator.crow_indices().long()
        self.rows = side.rows

    def __getitem__(self, at: slice) -> torch.Tensor:
        import torch

        positions = torch.arange(at.start, min(at.stop, int(self.crow[-1])), device=self.crow.device)
        return (torch.searchsorted(self.crow, positions, right=True) - 1) % self.rows


def _errors(users: torch.Tensor, items: torch.Tensor, rows: torch.Tensor | _Rows, cols: torch.Tensor,
            truth: torch.Tensor,
            clip: tuple[float, float] | None = None) -> tuple[float, float]:
    """(sum of squared, sum of absolute) errors of the predictions x_u . y_i of the (row, col) pairs
    (each clipped to `clip` where given) against `truth`, in double precision, PREDICT_CHUNK at a time
    so that neither the gathered factor rows nor the predictions ever exist whole."""
    import torch

    squared = absolute = 0.0
    for at in range(0, len(truth), PREDICT_CHUNK):
        predicted = torch.linalg.vecdot(users.index_select(0, rows[at:at + PREDICT_CHUNK]),
                                        items.index_select(0, cols[at:at + PREDICT_CHUNK]))
        predicted = predicted.clamp(*clip) if clip is not None else predicted
        diff = predicted.double() - truth[at:at + PREDICT_CHUNK].double()
        squared += float((diff * diff).sum())
        absolute += float(diff.abs().sum())
    return squared, absolute


def _task_device(context: BarrierTaskContext, name: str) -> str:
    """The task's own GPU when Spark assigned one (spark.task.resource.gpu.amount), else `name`."""
    gpus = context.resources().get("gpu")
    if name.startswith("cuda") and gpus and gpus.addresses:
        return f"cuda:{gpus.addresses[0]}"
    return name


def _rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _restart_peak_rss() -> None:
    """Restart this process's resident high-water mark from now (Linux's clear_refs "5"), so that a
    Python worker Spark reuses reports the task's own peak, not the routing pass's before it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:  # not Linux, or not allowed: the peak is then the worker's whole life's
        pass


def _peak_rss(start: int) -> int:
    """This process's resident high-water mark since `_restart_peak_rss`, in bytes: VmHWM, or the
    resident size `start` measured at the restart where larger, for the kernel raises VmHWM lazily
    (when pages are unmapped, not when malloc hands them back with madvise), so both are floors."""
    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    return max(hwm, start)


def _ranked(group: Group, model: Ranking | None, baseline: Ranking | None) -> list[float]:
    """Both rankings' user-weighted sums over all tasks (each task ranks its own users)."""
    from recommender.tensor.collective import all_sum

    def weighted(ranked: Ranking | None) -> list[float]:
        if ranked is None:
            return [0.0] * len(RANKED)
        return [float(ranked.users)] + [ranked.users * getattr(ranked, name) for name in RANKED[1:]]

    return all_sum(group, weighted(model) + weighted(baseline))


def _ranking(k: int, sums: dict[str, float], who: str) -> Ranking | None:
    """A Ranking from the all-reduced sums of `_ranked` (`who`: model or base), None without users."""
    users = sums[f"{who}_users"]
    if not users:
        return None
    return Ranking(k, int(users), *(sums[f"{who}_{name}"] / users for name in RANKED[1:]))


def _side(block: Block, n_rows: int, n_cols: int, by_item: bool, rank: int, device: torch.device,
          ones: torch.Tensor | None) -> Side:
    """`als.make_side` of a block's compact rows and columns (its users', or its items' where `by_item`),
    in the column blocks `als.gram_blocks` gives these sizes, as the single-node engine builds its sides.
    The block is emptied: its arrays move to `device` (on the CPU shared, not copied) and are grouped
    in place, so the side takes no more memory than the block did."""
    import torch

    from recommender.tensor import als

    taken = (block.item, block.user, block.rating) if by_item else (block.user, block.item, block.rating)
    block.user, block.item, block.rating = (np.empty(0, array.dtype) for array in taken)
    rows, cols, ratings = (torch.from_numpy(array).to(device) for array in taken)
    del taken
    blocks = als.gram_blocks(n_rows, n_cols, len(ratings), rank, device)
    return als.make_side(rows, cols, ratings, n_rows, n_cols, blocks, ones, in_place=True)


def _trainer(params: ALSParams, device_name: str, wanted: Wanted
             ) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    """The body of each barrier task: read, meet, fit, predict, evaluate, recommend, one result row."""

    def task(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return clock[-1] - clock[-2]

        import torch

        from recommender import ranking
        from recommender.tensor import als
        from recommender.tensor.collective import Layout, all_sum, gather_rows, process_group, sum_tensor
        from recommender.tensor.single import compact, lookup
        from recommender.tensor.topk import rank_lists, top_k

        context = BarrierTaskContext.get()
        torch.set_num_threads(max(1, context.cpus()))
        device = torch.device(_task_device(context, device_name))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        _restart_peak_rss()
        start_rss = _rss()
        seconds = dict.fromkeys((f.name for f in fields(TaskFigures) if f.type == "float"), 0.0)
        seconds["import_s"] = lap()

        def timed_read() -> tuple[list[Block], list[int], float]:
            parts, read = _read(batches)
            return parts, read, time.perf_counter() - clock[-1]

        row: dict[str, object] = dict.fromkeys(COUNTED, 0) | dict.fromkeys(SUMS, 0.0)
        row |= {"user_factors": None, "item_factors": None}
        kept: list[torch.Tensor] = []
        with process_group(context, device, timed_read) as (group, (parts, read, seconds["read_s"])):
            train_u, train_i, held_u, held_i = parts
            held_bytes, rows = sum(p.nbytes for p in parts), sum(len(p.rating) for p in parts)
            _fail_for_test(context)
            totals = all_sum(group, [*map(float, read), float(len(train_u.rating))])
            row |= dict(zip([*READ, "train"], map(int, totals), strict=True))
            seconds["meet_s"] = lap() - seconds["read_s"]
            if row["rows0"] and not row["bad0"] and not row["bad1"] and row["train"]:  # else the driver says why
                my_users, _ = compact(train_u.user, out=train_u.user)  # each rating's user row, in place
                my_items, _ = compact(train_i.item, out=train_i.item)
                user_parts = gather_rows(group, torch.from_numpy(my_users.astype(np.int64)))
                item_parts = gather_rows(group, torch.from_numpy(my_items.astype(np.int64)))
                user_ids = torch.cat(user_parts).sort().values.numpy()  # every training user, as compact orders them
                item_ids = torch.cat(item_parts).sort().values.numpy()

                def layout(parts: list[torch.Tensor], ids: np.ndarray) -> Layout:
                    return Layout([torch.from_numpy(_positions(ids, p.numpy())).to(device) for p in parts], len(ids))

                users_layout, items_layout = layout(user_parts, user_ids), layout(item_parts, item_ids)
                del user_parts, item_parts
                _positions(item_ids, train_u.item, out=train_u.item)  # each rating's item column, in place
                _positions(user_ids, train_i.user, out=train_i.user)
                shapes = {False: (train_u, len(my_users), len(item_ids)), True: (train_i, len(my_items), len(user_ids))}
                built: dict[bool, Side] = {}
                ones = None
                for by_item in sorted(shapes, key=lambda by_item: -len(shapes[by_item][0].rating)):
                    built[by_item] = _side(*shapes[by_item], by_item, params.rank, device, ones)
                    ones = built[by_item].indicator.values()  # the larger side's first: the other shares them
                user_side, item_side = built[False], built[True]
                del shapes, built, ones, train_u, train_i
                seconds["setup_s"] = lap()

                users = als.initial_factors(len(user_ids), params.rank, params.seed, device)
                mine = users[users_layout.owned[group.rank]]
                for iteration in range(params.iterations):
                    items = items_layout.assemble(group, als.solve_side(item_side, users, params.reg))
                    mine = als.solve_side(user_side, items, params.reg)
                    if iteration + 1 < params.iterations:  # the last users stay here: predict needs only its own
                        users = users_layout.assemble(group, mine)
                als.synchronize(device)
                seconds["fit_s"] = lap()

                train_sums = _errors(mine, items, _Rows(user_side), user_side.indicator.col_indices(),
                                     user_side.weighted.values())
                hu, hi = lookup(my_users, held_u.user), lookup(item_ids, held_u.item)
                known = (hu >= 0) & (hi >= 0)
                held_sums = _errors(mine, items, torch.from_numpy(hu[known]).to(device),
                                    torch.from_numpy(hi[known]).to(device),
                                    torch.from_numpy(held_u.rating[known]).to(device), wanted.clip)
                als.synchronize(device)
                seconds["predict_s"] = lap()

                # Users and items of the holdout that training never saw count too (each task owns its own).
                new_users = np.unique(held_u.user[hu < 0])
                new_items = np.unique(held_i.item[lookup(my_items, held_i.item) < 0])
                sums = all_sum(group, [train_sums[0], *held_sums, float(np.count_nonzero(known)),
                                       float(len(my_users) + len(new_users)), float(len(my_items) + len(new_items)),
                                       float(len(held_u.rating)), float(len(my_users))])
                row |= dict(zip(("sq", "hsq", "habs"), sums[:3], strict=True))
                row |= dict(zip(("holdout_predictions", "users", "items", "holdout", "listed"), map(int, sums[3:]),
                                strict=True))
                seconds["evaluate_s"] = lap()

                if wanted.top_k:
                    rated = als.rated(user_side) if wanted.exclude_rated else None
                    best = top_k(mine, items, wanted.top_k, rated, TOP_K_CHUNK_BYTES)
                    als.synchronize(device)
                    row["k"] = best.items.shape[1]
                    seconds["recommend_s"] = lap()
                    if row["holdout"]:
                        counts = torch.bincount(user_side.indicator.col_indices().long(), minlength=len(item_ids))
                        popularity = ranking.popularity_from_counts(sum_tensor(group, counts).numpy())
                        lists = rank_lists(best, torch.from_numpy(popularity), rated, my_users, item_ids,
                                           held_u.user, held_u.item, held_u.rating, wanted.relevance,
                                           TOP_K_CHUNK_BYTES)
                        row |= dict(zip(SUMS[3:], _ranked(group, *lists), strict=True))
                        seconds["evaluate_s"] += lap()
                if wanted.factors:
                    row["user_factors"] = _npy(my_users, mine.cpu().numpy())
                    row["item_factors"] = _npy(my_items, items[items_layout.owned[group.rank]].cpu().numpy())
                kept = [*(t for s in (user_side, item_side) for t in (
                    s.indicator.crow_indices(), s.indicator.col_indices(), s.indicator.values(),
                    s.weighted.values(), s.counts)), users, items, mine]

        figures = TaskFigures(
            task=group.rank, stage=context.stageId(), rows=rows, held_bytes=held_bytes,
            tensor_bytes=sum(t.element_size() * t.nelement() for t in kept), start_rss_bytes=start_rss,
            peak_rss_bytes=_peak_rss(start_rss),
            peak_device_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0,
            **seconds,
        )
        row |= {f.name: getattr(figures, f.name) for f in fields(figures)}
        yield pa.RecordBatch.from_pylist([row], schema=pa.schema([(name, ARROW_TYPES[kind]) for name, kind in OUTPUT]))

    return task


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
    stage = routed.mapInArrow(_trainer(params, device, wanted), SCHEMA, barrier=True)
    start = time.perf_counter()
    rows = sorted(stage.repartition(1).collect(), key=lambda row: row["task"])
    stage_s = time.perf_counter() - start
    tasks = tuple(TaskFigures(**{f.name: row[f.name] for f in fields(TaskFigures)}) for row in rows)
    first = rows[0]
    sums = {name: first[name] for name in SUMS}
    factors = wanted.factors and bool(first["user_factors"])
    return Trained(
        counts={name: int(first[name]) for name in COUNTED if name != "k"}, sums=sums,
        ranking=_ranking(first["k"], sums, "model"), baseline=_ranking(first["k"], sums, "base"), k=int(first["k"]),
        figures=StageFigures(tasks, _attempt(spark, tasks[0].stage), stage_s),
        users=_from_npy([row["user_factors"] for row in rows]) if factors else None,
        items=_from_npy([row["item_factors"] for row in rows]) if factors else None,
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
