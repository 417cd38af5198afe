"""The single-node PyTorch recommender (`impl torch`): the same data, split, phases and result line.

load: read the file (the study's text with pandas and the shared bad-input rules, or the Parquet
conversion), split it and index the ids. fit: move the ratings to the device, group them both
ways and train (`torch_als`). predict and evaluate: every training and holdout pair. recommend
(with --top-k): the k best unrated items of every user. On CUDA each phase ends with a device
synchronisation, so queued GPU work counts.

With --implicit the model predicts preferences, not ratings (`als.targets`: 1 where r > 0, else 0; MLlib's
prediction column means the same), so the training MSE and the holdout RMSE and MAE are measured against
those, and holdout predictions are not clipped to the rating scale (`Job.holdout_clip`). The ranking metrics
and the top-k lists are the same in both modes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from recommender import ranking
from recommender.data.columns import ITEM, RATING, USER
from recommender.data.readers import read_any
from recommender.engine import Job, Outcome
from recommender.result import Counts, Metrics, Ranking, Recommended, Runtime, TorchRuntime
from recommender.split import holdout_hash, threshold
from recommender.tensor import als as torch_als
from recommender.tensor.topk import TopK, rank_lists, top_k
from recommender.timing import PhaseTimer

_BLOCK = 2**22  # ids compacted in place this many at a time


def device_of(name: str) -> torch.device:
    """`cpu`, `cuda` or `cuda:N`, checked against what this process can use."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch build or machine has no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: expected cpu, cuda or cuda:N")
    return device


def compact(ids: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct ids, each id's index among them), in linear time for dense id ranges. With
    `out` (int32, as long as `ids`; `ids` itself will do) the indices are written there, a block at a time."""
    top = int(ids.max()) if len(ids) else 0
    if top > 50 * max(len(ids), 1):  # sparse id space: sort instead of a lookup table
        distinct, index = np.unique(ids, return_inverse=True)
        if out is None:
            return distinct, index.astype(np.int32)
        out[:] = index
        return distinct, out
    present = np.zeros(top + 1, dtype=bool)
    present[ids] = True
    lookup = (np.cumsum(present, dtype=np.int64) - 1).astype(np.int32)
    if out is None:
        return np.flatnonzero(present), lookup[ids]
    for start in range(0, len(ids), _BLOCK):
        np.take(lookup, ids[start : start + _BLOCK], out=out[start : start + _BLOCK])
    return np.flatnonzero(present), out


def distinct_count(ids: np.ndarray) -> int:
    """How many distinct ids, without sorting a dense id range."""
    top = int(ids.max()) if len(ids) else 0
    if top > 50 * max(len(ids), 1):
        return len(np.unique(ids))
    return int(np.count_nonzero(np.bincount(ids, minlength=top + 1)))


def lookup(distinct: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each of `ids` in sorted `distinct`, or -1 where absent (cold start)."""
    pos = np.searchsorted(distinct, ids).clip(0, max(len(distinct) - 1, 0))
    found = (distinct[pos] == ids) if len(distinct) else np.zeros(len(ids), bool)
    return np.where(found, pos, -1).astype(np.int64)


def _errors(pred: torch.Tensor, truth: torch.Tensor, chunk: int = 2**24) -> tuple[float, float]:
    """(sum of squared errors, sum of absolute errors) in double precision, a chunk at a time."""
    squared = absolute = 0.0
    for start in range(0, len(pred), chunk):
        diff = pred[start : start + chunk].double() - truth[start : start + chunk].double()
        squared += float((diff * diff).sum())
        absolute += float(diff.abs().sum())
    return squared, absolute


def _ranking(job: Job, best: TopK, rated: torch.Tensor | None, train_i: np.ndarray, user_ids: np.ndarray,
             item_ids: np.ndarray, held_users: np.ndarray, held_items: np.ndarray,
             held_ratings: np.ndarray) -> tuple[Ranking | None, Ranking | None]:
    """The ranking metrics of the model's lists and of the most-popular baseline's (`topk.rank_lists`)."""
    popularity = torch.from_numpy(ranking.popularity_scores(train_i, len(item_ids)))
    return rank_lists(best, popularity, rated, user_ids, item_ids, held_users, held_items, held_ratings,
                      job.relevance)


def run(job: Job, timer: PhaseTimer) -> Outcome:
    """Load, fit, predict and evaluate on one device; each phase ends with the device's queue empty."""
    device = device_of(job.device)
    if job.threads:
        torch.set_num_threads(job.threads)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    params = job.params
    with timer.phase("load"):
        reads = [read_any(job.path, job.skip_bad_rows)]
        reads += [read_any(job.test, job.skip_bad_rows)] if job.test is not None else []
        frame = reads[0].frame if len(reads) == 1 else pd.concat([r.frame for r in reads], ignore_index=True)
        users = frame[USER].to_numpy(np.int32)  # int32 throughout: 400M ratings must fit 24 GB
        items = frame[ITEM].to_numpy(np.int32)
        ratings = frame[RATING].to_numpy(np.float32)
        skipped, problems = sum(r.skipped for r in reads), [p for r in reads for p in r.problems]
        n_train_file = len(reads[0].frame)
        del reads, frame
        if job.test is not None:  # the predefined test file is the holdout
            held = np.arange(len(users)) >= n_train_file
        elif params.holdout:
            hashes = np.asarray(holdout_hash(users.astype(np.int64), items.astype(np.int64), params.seed))
            held = hashes < threshold(params.holdout)
        else:
            held = np.zeros(len(users), dtype=bool)
        evaluated = bool(params.holdout) or job.test is not None
        held_u, held_i, held_r = users[held], items[held], ratings[held]
        n_ratings = len(ratings)
        if evaluated:
            train = ~held
            user_ids, train_u = compact(users[train])
            item_ids, train_i = compact(items[train])
            train_r = ratings[train]
            raw = (users, items)
        else:  # no copies: the ids compacted in place, the raw ones gone (8 bytes a rating)
            user_ids, train_u = compact(users, out=users)
            item_ids, train_i = compact(items, out=items)
            train_r, raw = ratings, None
        del held, ratings, users, items

    with timer.phase("fit"):  # the by-user side is all that is kept of the training ratings
        by_user = torch_als.user_side(torch.from_numpy(train_u).to(device), torch.from_numpy(train_i).to(device),
                                      torch.from_numpy(train_r).to(device), len(user_ids), len(item_ids),
                                      params.rank, in_place=True)  # the fit's own arrays, grouped where they lie
        del train_u, train_i, train_r
        model = torch_als.fit_sides(by_user, torch_als.item_side(by_user, len(item_ids), params.rank), params)
        torch_als.synchronize(device)

    with timer.phase("predict"):  # the training pairs in the by-user side's order
        tr = torch_als.targets(by_user.weighted.values(), params.implicit)
        train_pred = model.predict(torch_als.rows_of(by_user), by_user.weighted.col_indices())
        hu, hi = lookup(user_ids, held_u), lookup(item_ids, held_i)
        known = (hu >= 0) & (hi >= 0)
        hold_pred = model.predict(torch.from_numpy(hu[known]).to(device),
                                  torch.from_numpy(hi[known]).to(device))
        torch_als.synchronize(device)

    with timer.phase("evaluate"):
        n_hold = int(known.sum())
        hold_truth = torch_als.targets(torch.from_numpy(held_r[known]).to(device), params.implicit)
        clipped = hold_pred.clamp(*job.holdout_clip) if job.holdout_clip is not None else hold_pred
        held_sums = (*_errors(clipped, hold_truth), n_hold) if evaluated else None
        metrics = Metrics.from_sums((_errors(train_pred, tr)[0], len(tr)), held_sums)

    recommended = None
    if job.top_k:
        with timer.phase("recommend"):
            rated = torch_als.rated(by_user) if job.exclude_rated else None
            best = top_k(model.users, model.items, job.top_k, rated)
            torch_als.synchronize(device)
        recommended = Recommended(best.items.shape[1], len(user_ids), job.exclude_rated, job.relevance)
        if evaluated:
            with timer.phase("evaluate"):
                model_ranking, baseline = _ranking(job, best, rated, by_user.weighted.col_indices().cpu().numpy(),
                                                   user_ids, item_ids, held_u, held_i, held_r)
                metrics = replace(metrics, ranking=model_ranking, baseline=baseline)

    counts = Counts(
        ratings=n_ratings, skipped_rows=skipped,  # without a holdout, compact counted them already
        users=distinct_count(raw[0]) if raw else len(user_ids),
        items=distinct_count(raw[1]) if raw else len(item_ids), train=len(tr), holdout=len(held_r),
        train_predictions=len(train_pred), holdout_predictions=n_hold,
    )
    runtime = Runtime(torch=TorchRuntime(torch.__version__, str(device), torch.get_num_threads()))
    resources = ({"peak_device_bytes": float(torch.cuda.max_memory_allocated(device))}
                 if device.type == "cuda" else {})
    return Outcome(counts, metrics, runtime, blocks=1, skipped_examples=problems, resources=resources,
                   recommended=recommended)
