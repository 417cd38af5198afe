"""The body of each torch-spark barrier task: read its shuffled blocks, meet the others (torch.distributed),
build the CSR sides, fit, predict, evaluate and recommend, and return one row of sums and figures."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from pyspark import BarrierTaskContext

from recommender.data.columns import RATING
from recommender.engine import Job
from recommender.params import ALSParams
from recommender.result import Ranking
from recommender.tensor.on_spark.figures import TaskFigures, peak_rss, restart_peak_rss, rss
from recommender.tensor.on_spark.routing import READ, SIDES, column

if TYPE_CHECKING:
    import torch

    from recommender.tensor.als import Side
    from recommender.tensor.collective import Group, Layout


TOP_K_CHUNK_BYTES = 64 << 20  # one top-k chunk's scores: a task's blocks share its executor's memory
IN_PLACE_BLOCK = 1 << 22  # ids rewritten in place this many at a time
FAIL_PROPERTY = "recommender.torch_spark.fail"  # test hook, a Spark local property: see `_fail_for_test`
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
        return cls(job.top_k, job.exclude_rated, job.relevance, job.holdout_clip)


COUNTED = (*READ, "users", "items", "train", "holdout", "holdout_predictions", "listed", "k")
SUMS = ("sq", "hsq", "habs", *(f"{who}_{name}" for who in ("model", "base") for name in RANKED))
OUTPUT = ([(name, "long") for name in COUNTED] + [(name, "double") for name in SUMS]
          + [(f.name, "double" if f.type == "float" else "long") for f in fields(TaskFigures)]
          + [("user_factors", "binary"), ("item_factors", "binary")])  # a task's one row
SCHEMA = ", ".join(f"{name} {kind}" for name, kind in OUTPUT)
ARROW_TYPES = {"long": pa.int64(), "double": pa.float64(), "binary": pa.binary()}


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
        sizes = np.stack([column(batch, f"n{s}", np.int64) for s in SIDES], axis=1)
        arrived.append((_values(batch.column("code"), np.uint64), _values(batch.column(RATING), np.float32), sizes))
        read += np.stack([column(batch, name, np.int64) for name in READ]).sum(axis=1)
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


def to_npz(ids: np.ndarray, factors: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, ids=ids, factors=factors)
    return out.getvalue()


def from_npz(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
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


def _task_device(context: BarrierTaskContext, name: str) -> str:
    """The task's own GPU when Spark assigned one (spark.task.resource.gpu.amount), else `name`."""
    gpus = context.resources().get("gpu")
    if name.startswith("cuda") and gpus and gpus.addresses:
        return f"cuda:{gpus.addresses[0]}"
    return name


def _ranked(group: Group, model: Ranking | None, baseline: Ranking | None) -> list[float]:
    """Both rankings' user-weighted sums over all tasks (each task ranks its own users)."""
    from recommender.tensor.collective import all_sum

    def weighted(ranked: Ranking | None) -> list[float]:
        if ranked is None:
            return [0.0] * len(RANKED)
        return [float(ranked.users)] + [ranked.users * getattr(ranked, name) for name in RANKED[1:]]

    return all_sum(group, weighted(model) + weighted(baseline))


def _side(block: Block, n_rows: int, n_cols: int, by_item: bool, rank: int, device: torch.device) -> Side:
    """`als.make_side` of a block's compact rows and columns (its users', or its items' where `by_item`),
    in the column blocks `als.gram_blocks` gives these sizes, as the single-node engine builds its sides.
    The block is emptied: its arrays move to `device` (on the CPU shared, not copied) and are grouped
    in place, so the side takes no more memory than the block did."""
    import torch

    from recommender.tensor import als

    taken = (block.item, block.user, block.rating) if by_item else (block.user, block.item, block.rating)
    block.user, block.item, block.rating = (np.empty(0, array.dtype) for array in taken)
    rows, cols, values = (torch.from_numpy(array).to(device) for array in taken)
    del taken
    ratings = als.encode(values)
    del values
    blocks = als.gram_blocks(n_rows, n_cols, len(ratings), rank, device)
    return als.make_side(rows, cols, ratings, n_rows, n_cols, blocks, in_place=True)


def _fit(group: Group, params: ALSParams, user_side: Side, item_side: Side, users_layout: Layout,
         items_layout: Layout, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(every user's factors as last gathered, this task's user factors, every item's factors) after
    `params.iterations`, from the single-node engine's seeded start. Every half-iteration solves this
    task's rows against the whole other side, gathered; the implicit objective's Gram Y^T Y of that side
    is the all-reduced sum of each task's own rows' Gram (never gathered row by row), and CG starts from
    this task's rows' previous factors."""
    from recommender.tensor import als
    from recommender.tensor.collective import sum_tensor

    def gram(own: torch.Tensor) -> torch.Tensor | None:
        return sum_tensor(group, als.gram_of(own)).to(device) if how.implicit else None

    how = als.Solve.of(params)
    users = als.initial_factors(users_layout.rows, params.rank, params.seed, device)
    mine = users[users_layout.owned[group.rank]]
    users_gram = als.gram_of(users) if how.implicit else None  # the start is whole in every task
    own_items: torch.Tensor | None = None  # CG's first item solve starts from zeros, as single-node's
    for iteration in range(params.iterations):
        own_items = als.solve_side(item_side, users, how, users_gram, own_items)
        items = items_layout.assemble(group, own_items)
        mine = als.solve_side(user_side, items, how, gram(own_items), mine)
        if iteration + 1 < params.iterations:  # the last users stay here: predict needs only its own
            users = users_layout.assemble(group, mine)
            users_gram = gram(mine)
    als.synchronize(device)
    return users, mine, items


def trainer(params: ALSParams, device_name: str, wanted: Wanted
             ) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    """The body of each barrier task: read, meet, fit, predict, evaluate, recommend, one result row."""

    def task(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return clock[-1] - clock[-2]

        import torch

        from recommender import ranking
        from recommender.ids import compact, lookup
        from recommender.tensor import als
        from recommender.tensor.collective import Layout, all_sum, gather_rows, process_group, sum_tensor
        from recommender.tensor.errors import errors, side_errors
        from recommender.tensor.topk import rank_lists, top_k

        context = BarrierTaskContext.get()
        torch.set_num_threads(max(1, context.cpus()))
        device = torch.device(_task_device(context, device_name))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        restart_peak_rss()
        start_rss = rss()
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
                user_side = _side(train_u, len(my_users), len(item_ids), False, params.rank, device)
                item_side = _side(train_i, len(my_items), len(user_ids), True, params.rank, device)
                del train_u, train_i
                seconds["setup_s"] = lap()

                users, mine, items = _fit(group, params, user_side, item_side, users_layout, items_layout, device)
                seconds["fit_s"] = lap()

                train_sums = side_errors(mine, items, user_side, params.implicit)
                hu, hi = lookup(my_users, held_u.user), lookup(item_ids, held_u.item)
                known = (hu >= 0) & (hi >= 0)
                held_sums = errors(mine, items, torch.from_numpy(hu[known]).to(device),
                                   torch.from_numpy(hi[known]).to(device),
                                   torch.from_numpy(held_u.rating[known]).to(device), params.implicit, wanted.clip)
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
                        counts = torch.bincount(user_side.cols.long(), minlength=len(item_ids))
                        popularity = ranking.popularity_from_counts(sum_tensor(group, counts).numpy())
                        lists = rank_lists(best, torch.from_numpy(popularity), rated, my_users, item_ids,
                                           held_u.user, held_u.item, held_u.rating, wanted.relevance)
                        row |= dict(zip(SUMS[3:], _ranked(group, *lists), strict=True))
                        seconds["evaluate_s"] += lap()
                if wanted.factors:
                    row["user_factors"] = to_npz(my_users, mine.cpu().numpy())
                    row["item_factors"] = to_npz(my_items, items[items_layout.owned[group.rank]].cpu().numpy())
                kept = [*(t for s in (user_side, item_side) for t in (s.crow, s.cols, s.ratings.stored, s.counts)),
                        users, items, mine]

        figures = TaskFigures(
            task=group.rank, stage=context.stageId(), rows=rows, held_bytes=held_bytes,
            tensor_bytes=sum(t.element_size() * t.nelement() for t in kept), start_rss_bytes=start_rss,
            peak_rss_bytes=peak_rss(start_rss),
            peak_device_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0,
            **seconds,
        )
        row |= {f.name: getattr(figures, f.name) for f in fields(figures)}
        yield pa.RecordBatch.from_pylist([row], schema=pa.schema([(name, ARROW_TYPES[kind]) for name, kind in OUTPUT]))

    return task
