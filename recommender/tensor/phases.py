"""The phases every single-process engine shares around its own fit: `torch` (recommender/tensor/single.py)
and the peer libraries (recommender/peers). So each is measured on the same data, split and metrics.

load: read the file (the study's text with pandas and the shared bad-input rules, or the Parquet
conversion), split it and index the ids (`load_arrays`; torch streams a Parquet table instead, see
recommender/tensor/stream.py). fit: the engine's own, from the training ratings to a `Fitted`.
predict and evaluate: every training and holdout pair (`errors`: a chunk at a time, never all predictions).
recommend (with --top-k): the k best unrated items
of every user, and the ranking metrics of those lists and of the most-popular baseline's. On CUDA each
phase ends with a device synchronisation, so queued GPU work counts.

With --implicit the model predicts preferences, not ratings (`als.targets`: 1 where r > 0, else 0; MLlib's
prediction column means the same), so the training MSE and the holdout RMSE and MAE are measured against
those, and holdout predictions are not clipped to the rating scale (`Job.holdout_clip`). The ranking metrics
and the top-k lists are the same in both modes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from recommender import memory, ranking
from recommender.data.columns import ITEM, RATING, USER
from recommender.data.readers import read_any
from recommender.engine import Job, Outcome
from recommender.ids import compact, distinct_count, lookup
from recommender.result import Counts, Metrics, Recommended, Runtime
from recommender.split import holdout_hash, threshold
from recommender.tensor import als as torch_als
from recommender.tensor.errors import errors, side_errors
from recommender.tensor.topk import rank_lists, top_k
from recommender.timing import PhaseTimer

T = TypeVar("T")  # what a load phase hands its fit


class Training:
    """The training ratings, ids compacted to 0..n-1 (int32 users and items, float32 ratings), handed to
    a fit that may consume them: `take` leaves the holder empty, so the fit's grouping can reuse or free
    the arrays (8 bytes a rating fewer at the peak of a large run)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int):
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = (users, items, ratings)
        self.n_users, self.n_items = n_users, n_items

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(users, items, ratings), once."""
        if self._arrays is None:
            raise RuntimeError("the training ratings were taken already")
        arrays, self._arrays = self._arrays, None
        return arrays


@dataclass(frozen=True)
class Fitted:
    """What a fit returns: the factors, the training ratings grouped by user (on the factors' device,
    where the training pairs are predicted and rated items left out of the lists), and what ran."""

    model: torch_als.Model
    by_user: torch_als.Side
    runtime: Runtime


@dataclass(frozen=True)
class Loaded:
    """The load phase's output besides the training ratings: the holdout, the id maps and the counts."""

    user_ids: np.ndarray  # sorted distinct training ids: the index of a row of the factors
    item_ids: np.ndarray
    held_users: np.ndarray  # raw ids
    held_items: np.ndarray
    held_ratings: np.ndarray
    evaluated: bool  # a holdout (hashed or a test file) was asked for
    n_ratings: int
    skipped: int
    problems: list[str]
    distinct_users: int  # in the whole input, holdout included
    distinct_items: int


def device_of(name: str) -> torch.device:
    """`cpu`, `cuda` or `cuda:N`, checked against what this process can use."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch build or machine has no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: expected cpu, cuda or cuda:N")
    return device


def load_arrays(job: Job) -> tuple[Training, Loaded]:
    """Read, split and index; int32 ids throughout (400M ratings must fit 24 GB)."""
    params = job.params
    reads = [read_any(job.path, job.skip_bad_rows)]
    reads += [read_any(job.test, job.skip_bad_rows)] if job.test is not None else []
    frame = reads[0].frame if len(reads) == 1 else pd.concat([r.frame for r in reads], ignore_index=True)
    users = frame[USER].to_numpy(np.int32)
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
        distinct = distinct_count(users), distinct_count(items)
    else:  # no copies: the ids compacted in place, the raw ones gone (8 bytes a rating)
        user_ids, train_u = compact(users, out=users)
        item_ids, train_i = compact(items, out=items)
        train_r, distinct = ratings, (len(user_ids), len(item_ids))
    training = Training(train_u, train_i, train_r, len(user_ids), len(item_ids))
    return training, Loaded(user_ids, item_ids, held_u, held_i, held_r, evaluated, n_ratings, skipped, problems,
                             *distinct)


def run(job: Job, timer: PhaseTimer, load: Callable[[Job], tuple[T, Loaded]],
        fit: Callable[[Job, T, torch.device], Fitted]) -> Outcome:
    """`load`, `fit` (on what `load` read: `Training` for `load_arrays`), predict and evaluate on one device;
    each phase ends with the device's queue empty."""
    device = device_of(job.device)
    if job.threads:
        torch.set_num_threads(job.threads)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    implicit = job.params.implicit
    with timer.phase("load"):
        training, loaded = load(job)

    with timer.phase("fit"):
        fitted = fit(job, training, device)
        del training
        torch_als.synchronize(device)
    model, by_user = fitted.model, fitted.by_user

    with timer.phase("predict"):  # every training pair, in the by-user side's order, and every holdout pair
        train_squared, _ = side_errors(model.users, model.items, by_user, implicit)
        hu, hi = lookup(loaded.user_ids, loaded.held_users), lookup(loaded.item_ids, loaded.held_items)
        known = (hu >= 0) & (hi >= 0)
        n_hold, n_train = int(known.sum()), len(by_user.ratings)
        held = errors(model.users, model.items, torch.from_numpy(hu[known]).to(device),
                      torch.from_numpy(hi[known]).to(device), torch.from_numpy(loaded.held_ratings[known]).to(device),
                      implicit, job.holdout_clip)
        torch_als.synchronize(device)

    with timer.phase("evaluate"):
        metrics = Metrics.from_sums((train_squared, n_train), (*held, n_hold) if loaded.evaluated else None)

    recommended = None
    if job.top_k:
        with timer.phase("recommend"):
            rated = torch_als.rated(by_user) if job.exclude_rated else None
            best = top_k(model.users, model.items, job.top_k, rated)
            torch_als.synchronize(device)
        recommended = Recommended(best.items.shape[1], len(loaded.user_ids), job.exclude_rated, job.relevance)
        if loaded.evaluated:
            with timer.phase("evaluate"):
                train_items = by_user.cols.cpu().numpy()
                popularity = torch.from_numpy(ranking.popularity_scores(train_items, len(loaded.item_ids)))
                model_ranking, baseline = rank_lists(
                    best, popularity, rated, loaded.user_ids, loaded.item_ids, loaded.held_users,
                    loaded.held_items, loaded.held_ratings, job.relevance)
                metrics = replace(metrics, ranking=model_ranking, baseline=baseline)

    counts = Counts(
        ratings=loaded.n_ratings, skipped_rows=loaded.skipped, users=loaded.distinct_users,
        items=loaded.distinct_items, train=n_train, holdout=len(loaded.held_ratings),
        train_predictions=n_train, holdout_predictions=n_hold,
    )
    resources = ({memory.PEAK_DEVICE: float(torch.cuda.max_memory_allocated(device))}
                 if device.type == "cuda" else {})
    return Outcome(counts, metrics, fitted.runtime, blocks=1, skipped_examples=loaded.problems,
                   resources=resources, recommended=recommended)
