"""`impl torch-spark`: the `tensor.als` solver, the whole fit in one Spark barrier stage.

Spark's shuffle routes each rating once to the task that owns its user and once to the task that
owns its item (a hash of the id picks the task; holdout ratings travel the same way), packed per
input batch into one binary chunk per task. Each task keeps its user block and item block as torch
tensors, on its own GPU where Spark assigned one, for the whole fit. Every half-iteration each task
solves its rows (`als.solve_side`) and torch.distributed all-gathers the solved side
(`tensor.collective`).
Predict and evaluate run in the same tasks; their sums are all-reduced, so only one small row per
task, and the factors only when asked for, cross back to the driver.

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

import io
import json
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from pyspark import BarrierTaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recommender.data.columns import ITEM, RATING, USER
from recommender.params import ALSParams
from recommender.result import Counts, Metrics
from recommender.spark.df import split
from recommender.spark.loading import load_ratings
from recommender.timing import PhaseTimer

if TYPE_CHECKING:
    import torch

PREDICT_CHUNK = 1 << 20  # ratings predicted at a time: bounds the gathered factor rows' memory
ARROW_BATCH = "1000000"  # rows per Arrow batch: a task's blocks arrive in few large pieces
FAIL_PROPERTY = "recommender.torch_spark.fail"  # test hook, a Spark local property: see `_fail_for_test`
# The side column: a training rating by its user (0) and by its item (1); a held-out one likewise (2, 3).
BY_USER, BY_ITEM, HELD_BY_USER, HELD_BY_ITEM = range(4)


@dataclass(frozen=True)
class TaskFigures:
    """What one barrier task held and how long its steps took (seconds)."""

    task: int  # its partition, the rank in the process group
    stage: int  # the Spark stage id, to look its attempts up
    rows: int  # ratings this task received: its user block, item block and holdout
    held_bytes: int  # those rows unpacked: int8 side, int32 user and item, float32 rating
    tensor_bytes: int  # the blocks and factor matrices it kept as torch tensors
    peak_rss_bytes: int  # peak resident memory of its Python worker process
    peak_device_bytes: int  # peak CUDA memory, 0 on the CPU
    import_s: float  # torch and this package, in a fresh Python worker
    read_s: float  # shuffle read and the chunks to numpy
    setup_s: float  # rendezvous, id exchange, indexing and CSR blocks
    fit_s: float
    predict_s: float
    evaluate_s: float


@dataclass(frozen=True)
class StageFigures:
    """The barrier stage as a whole, for the result's `extra_info`."""

    tasks: tuple[TaskFigures, ...]
    attempt: int  # the stage attempt that succeeded: > 0 after Spark retried the stage
    stage_s: float  # the driver's wait for the job: shuffle write, launch and the barrier stage

    def extra_info(self) -> dict[str, float | int]:
        """Per-executor peaks and where the stage's time went (the slowest task's steps)."""
        def seconds(task: TaskFigures) -> float:
            return task.import_s + task.read_s + task.setup_s + task.fit_s + task.predict_s + task.evaluate_s

        slowest = max(self.tasks, key=seconds)
        return {
            "tasks": len(self.tasks),
            "stage_attempt": self.attempt,
            "peak_rss_bytes_max": max(t.peak_rss_bytes for t in self.tasks),
            "peak_device_bytes_max": max(t.peak_device_bytes for t in self.tasks),
            "held_bytes_max": max(t.held_bytes for t in self.tasks),
            "tensor_bytes_max": max(t.tensor_bytes for t in self.tasks),
            "shuffle_write_and_launch_s": round(self.stage_s - seconds(slowest), 4),
            "task_import_s": round(slowest.import_s, 4),
            "task_read_s": round(slowest.read_s, 4),
            "task_setup_s": round(slowest.setup_s, 4),
            "task_fit_s": round(slowest.fit_s, 4),
        }


@dataclass(frozen=True)
class Trained:
    """What the stage returns to the driver: global sums, per-task figures, factors if asked for."""

    counts: dict[str, int]  # users, items (over all ratings), train, holdout, holdout_predictions
    sums: dict[str, float]  # sq (training), hsq, habs (holdout)
    figures: StageFigures
    users: tuple[np.ndarray, np.ndarray] | None  # (sorted user ids, their factors) when asked for
    items: tuple[np.ndarray, np.ndarray] | None


SUMS = ("sq", "n", "hsq", "habs", "hn", "users", "items", "holdout")
SCHEMA = ", ".join(
    [f"{name} double" for name in SUMS]
    + [f"{f.name} {'double' if f.type == 'float' else 'long'}" for f in fields(TaskFigures)]
    + ["user_factors binary", "item_factors binary"]
)


def owner(ids: np.ndarray, blocks: int) -> np.ndarray:
    """The task that owns each id: a multiplicative hash, so that consecutive ids spread evenly."""
    return ((ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(1 << 32) % np.uint64(blocks)).astype(np.int64)


def partition_keys(spark: SparkSession, blocks: int) -> list[int]:
    """For each partition t of `repartition(blocks, key)`, a long key that Spark's hash partitioning
    (pmod(murmur3 hash, blocks), as SQL's `hash`) sends to t: so a row can name its target task."""
    rows = spark.range(64 * blocks).select("id", F.expr(f"pmod(hash(id), {blocks})").alias("p")).collect()
    keys: dict[int, int] = {}
    for row in rows:
        keys.setdefault(row["p"], row["id"])
    if len(keys) < blocks:
        raise RuntimeError(f"found keys for only {len(keys)} of {blocks} partitions")
    return [keys[t] for t in range(blocks)]


def _route(ratings: DataFrame, params: ALSParams, blocks: int, spark: SparkSession) -> DataFrame:
    """Each rating twice, to the task that owns its user and to the task that owns its item.

    One Arrow pass packs each input batch into one row per task: a key that hash partitioning sends
    to that task, and two binary columns holding the task's ratings of the batch as numpy arrays
    (`code` packs the side in 2 bits, user and item in 31 bits each; the rating). Spark's shuffle then
    moves a few large binary values instead of twice as many rows as ratings.
    """
    held = split(ratings, params)[2] if params.holdout else F.lit(False)
    keys = partition_keys(spark, blocks)

    def pack(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        for batch in batches:
            user = batch.column(USER).to_numpy(zero_copy_only=False).astype(np.uint64)
            item = batch.column(ITEM).to_numpy(zero_copy_only=False).astype(np.uint64)
            rating = batch.column(RATING).to_numpy(zero_copy_only=False).astype(np.float32)
            held_side = batch.column("held").to_numpy(zero_copy_only=False).astype(np.uint64) * np.uint64(2)
            ids = (user << np.uint64(31)) | item
            by_user = (held_side << np.uint64(62)) | ids
            by_item = ((held_side + np.uint64(1)) << np.uint64(62)) | ids
            user_task, item_task = owner(user, blocks), owner(item, blocks)
            out: dict[str, list[object]] = {"key": [], "code": [], RATING: []}
            for task in range(blocks):
                mine_u, mine_i = user_task == task, item_task == task
                out["key"].append(keys[task])
                out["code"].append(np.concatenate([by_user[mine_u], by_item[mine_i]]).tobytes())
                out[RATING].append(np.concatenate([rating[mine_u], rating[mine_i]]).tobytes())
            yield pa.RecordBatch.from_pydict(out)

    columns = ratings.select(USER, ITEM, RATING, held.alias("held"))
    return columns.mapInArrow(pack, f"key long, code binary, {RATING} binary").repartition(blocks, "key")


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


def _read(batches: Iterable[pa.RecordBatch]) -> dict[str, np.ndarray]:
    """The task's shuffled chunks as numpy columns: side, user, item, rating (`_route` packs them)."""
    codes, ratings = [], []
    for batch in batches:
        codes += [np.frombuffer(blob, dtype=np.uint64) for blob in batch.column("code").to_pylist()]
        ratings += [np.frombuffer(blob, dtype=np.float32) for blob in batch.column(RATING).to_pylist()]
    code = np.concatenate(codes or [np.empty(0, np.uint64)])
    mask = np.uint64((1 << 31) - 1)
    return {"side": (code >> np.uint64(62)).astype(np.int8), USER: ((code >> np.uint64(31)) & mask).astype(np.int32),
            ITEM: (code & mask).astype(np.int32), RATING: np.concatenate(ratings or [np.empty(0, np.float32)])}


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


def _positions(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each of `values`' index in sorted `ids`, where all are present: a lookup table for dense ids."""
    if len(ids) and int(ids[-1]) <= 50 * max(len(values), len(ids)):
        table = np.zeros(int(ids[-1]) + 1, dtype=np.int32)
        table[ids] = np.arange(len(ids), dtype=np.int32)
        return table[values]
    return np.searchsorted(ids, values).astype(np.int32)


def _predict(users: torch.Tensor, items: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """x_u . y_i for each (row, col) pair, a million at a time so the gathered factors stay small."""
    import torch

    return torch.cat([(users[rows[at:at + PREDICT_CHUNK]] * items[cols[at:at + PREDICT_CHUNK]]).sum(dim=1)
                      for at in range(0, len(rows), PREDICT_CHUNK)] or [users.new_zeros(0)])


def _task_device(context: BarrierTaskContext, name: str) -> str:
    """The task's own GPU when Spark assigned one (spark.task.resource.gpu.amount), else `name`."""
    gpus = context.resources().get("gpu")
    if name.startswith("cuda") and gpus and gpus.addresses:
        return f"cuda:{gpus.addresses[0]}"
    return name


def _trainer(params: ALSParams, device_name: str, with_factors: bool
             ) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    """The body of each barrier task: read, join the group, fit, predict, evaluate, one result row."""

    def task(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return clock[-1] - clock[-2]

        import torch

        from recommender.tensor import als
        from recommender.tensor.collective import Layout, all_sum, gather_rows, process_group
        from recommender.tensor.single import compact, lookup

        context = BarrierTaskContext.get()
        torch.set_num_threads(max(1, context.cpus()))
        device = torch.device(_task_device(context, device_name))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        import_s = lap()
        data = _read(batches)
        read_s = lap()
        side = data["side"]
        by_user, by_item, held = side == BY_USER, side == BY_ITEM, side == HELD_BY_USER
        with process_group(context, device) as group:
            _fail_for_test(context)
            my_users, u_rows_np = compact(data[USER][by_user])
            my_items, i_rows_np = compact(data[ITEM][by_item])
            user_parts = gather_rows(group, torch.from_numpy(my_users))
            item_parts = gather_rows(group, torch.from_numpy(my_items))
            user_ids = torch.cat(user_parts).sort().values.numpy()  # every training user, as single.compact orders them
            item_ids = torch.cat(item_parts).sort().values.numpy()

            def on_device(array: np.ndarray) -> torch.Tensor:
                return torch.from_numpy(np.ascontiguousarray(array)).to(device)

            def layout(parts: list[torch.Tensor], ids: np.ndarray) -> Layout:
                return Layout([on_device(_positions(ids, p.numpy())) for p in parts], len(ids))

            users_layout, items_layout = layout(user_parts, user_ids), layout(item_parts, item_ids)
            u_rows, u_cols = on_device(u_rows_np), on_device(_positions(item_ids, data[ITEM][by_user]))
            u_ratings = on_device(data[RATING][by_user])
            user_side = als.make_side(u_rows, u_cols, u_ratings, len(my_users), len(item_ids))
            item_side = als.make_side(on_device(i_rows_np), on_device(_positions(user_ids, data[USER][by_item])),
                                      on_device(data[RATING][by_item]), len(my_items), len(user_ids))
            setup_s = lap()

            users = als.initial_factors(len(user_ids), params.rank, params.seed, device)
            mine = users[users_layout.owned[group.rank]]
            for iteration in range(params.iterations):
                items = items_layout.assemble(group, als.solve_side(item_side, users, params.reg))
                mine = als.solve_side(user_side, items, params.reg)
                if iteration + 1 < params.iterations:  # the last users stay here: predict needs only its own
                    users = users_layout.assemble(group, mine)
            als.synchronize(device)
            fit_s = lap()

            train_pred = _predict(mine, items, u_rows, u_cols)
            hu = lookup(my_users, data[USER][held])
            hi = lookup(item_ids, data[ITEM][held])
            known = (hu >= 0) & (hi >= 0)
            held_pred = _predict(mine, items, on_device(hu[known]), on_device(hi[known]))
            als.synchronize(device)
            predict_s = lap()

            diff = train_pred.double() - u_ratings.double()
            held_diff = held_pred.double() - on_device(data[RATING][held][known]).double()
            # Users and items of the holdout that training never saw count too (each task owns its own).
            new_users = np.unique(data[USER][held][hu < 0])
            held_items = data[ITEM][side == HELD_BY_ITEM]
            new_items = np.unique(held_items[lookup(my_items, held_items) < 0])
            totals = all_sum(group, [float((diff * diff).sum()), float(len(diff)), float((held_diff**2).sum()),
                                     float(held_diff.abs().sum()), float(len(held_diff)),
                                     float(len(my_users) + len(new_users)), float(len(my_items) + len(new_items)),
                                     float(held.sum())])
            evaluate_s = lap()
            factors = (_npy(my_users, mine.cpu().numpy()), _npy(my_items, items[items_layout.owned[group.rank]]
                                                                .cpu().numpy())) if with_factors else (None, None)

        kept = [*(t for s in (user_side, item_side) for t in (s.indicator.crow_indices(), s.indicator.col_indices(),
                                                              s.indicator.values(), s.weighted.values(), s.counts)),
                u_rows, u_cols, u_ratings, users, items, mine]
        figures = TaskFigures(
            task=group.rank, stage=context.stageId(), rows=len(side),
            held_bytes=sum(array.nbytes for array in data.values()),
            tensor_bytes=sum(t.element_size() * t.nelement() for t in kept),
            peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            peak_device_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0,
            import_s=import_s, read_s=read_s, setup_s=setup_s, fit_s=fit_s, predict_s=predict_s, evaluate_s=evaluate_s,
        )
        row = dict(zip(SUMS, totals, strict=True)) | {f.name: getattr(figures, f.name) for f in fields(figures)}
        row |= {"user_factors": factors[0], "item_factors": factors[1]}
        yield pa.RecordBatch.from_pylist([row])

    return task


def _attempt(spark: SparkSession, stage: int) -> int:
    """The latest attempt of `stage` (Spark's status tracker), -1 when Spark no longer keeps it."""
    info = spark.sparkContext.statusTracker().getStageInfo(stage)
    return info.currentAttemptId if info else -1


def train(spark: SparkSession, ratings: DataFrame, params: ALSParams, blocks: int, device: str = "cpu",
          with_factors: bool = False) -> Trained:
    """Fit, predict and evaluate `ratings` (user, item, rating) in one barrier stage of `blocks` tasks."""
    sc = spark.sparkContext
    slots = sc.defaultParallelism // int(sc.getConf().get("spark.task.cpus", "1"))
    if blocks > slots:
        raise ValueError(f"torch-spark runs {blocks} tasks at once (one barrier stage) but Spark has only "
                         f"{slots} task slots: use --blocks {slots} or fewer")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", ARROW_BATCH)
    routed = _route(ratings, params, blocks, spark)
    stage = routed.mapInArrow(_trainer(params, device, with_factors), SCHEMA, barrier=True)
    start = time.perf_counter()
    rows = sorted(stage.repartition(1).collect(), key=lambda row: row["task"])
    stage_s = time.perf_counter() - start
    tasks = tuple(TaskFigures(**{f.name: row[f.name] for f in fields(TaskFigures)}) for row in rows)
    first = rows[0]
    return Trained(
        counts={"users": int(first["users"]), "items": int(first["items"]), "train": int(first["n"]),
                "holdout": int(first["holdout"]), "holdout_predictions": int(first["hn"])},
        sums={"sq": first["sq"], "hsq": first["hsq"], "habs": first["habs"]},
        figures=StageFigures(tasks, _attempt(spark, tasks[0].stage), stage_s),
        users=_from_npy([row["user_factors"] for row in rows]) if with_factors else None,
        items=_from_npy([row["item_factors"] for row in rows]) if with_factors else None,
    )


def run(spark: SparkSession, path: str, params: ALSParams, skip_bad_rows: bool, timer: PhaseTimer,
        device: str = "cpu", report: Callable[[StageFigures], object] | None = None
        ) -> tuple[Counts, Metrics, list[str]]:
    """Load (timed), then the one barrier stage, timed as fit; `report` receives its figures,
    which also go to the timer's stream as one `ALS_STAGE {json}` line.

    The stage's predict and evaluate steps are timed inside the tasks (the slowest task's) and
    moved from the fit phase to their own, so the phases still add up to the driver's wall time.
    """
    with timer.phase("load"):
        ratings, loaded = load_ratings(spark, path, skip_bad_rows)
    with timer.phase("fit"):
        trained = train(spark, ratings, params, params.blocks or spark.sparkContext.defaultParallelism, device)
    for name in ("predict", "evaluate"):
        seconds = max(getattr(task, f"{name}_s") for task in trained.figures.tasks)
        timer.seconds["fit"] -= seconds
        timer.seconds[name] = seconds
    counts = trained.counts
    held = (trained.sums["hsq"], trained.sums["habs"], counts["holdout_predictions"]) if params.holdout else None
    metrics = Metrics.from_sums((trained.sums["sq"], counts["train"]), held)
    timer.emit("ALS_STAGE " + json.dumps(trained.figures.extra_info()))
    if report is not None:
        report(trained.figures)
    return Counts(
        ratings=loaded.ratings, skipped_rows=loaded.skipped, users=counts["users"], items=counts["items"],
        train=counts["train"], holdout=counts["holdout"], train_predictions=counts["train"],
        holdout_predictions=counts["holdout_predictions"],
    ), metrics, loaded.examples
