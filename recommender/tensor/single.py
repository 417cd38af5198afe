"""The single-node PyTorch recommender (`impl torch`): this suite's own ALS (recommender/tensor/als.py)
on one device, inside the phases every single-process engine shares (recommender/tensor/phases.py).
A Parquet table whose footers bound its ids is streamed (recommender/tensor/stream.py): its columns are
never all in memory, so a billion ratings fit one 24 GB machine; any other input is read whole."""

from __future__ import annotations

import numpy as np
import torch

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.readers import read_any
from recommender.engine import Job, Outcome
from recommender.result import Runtime, TorchRuntime
from recommender.tensor import als as torch_als
from recommender.tensor import stream
from recommender.tensor.phases import Fitted, Loaded, Training, load_arrays
from recommender.tensor.phases import run as run_phases
from recommender.timing import PhaseTimer


def load(job: Job) -> tuple[Training | stream.Streamed, Loaded]:
    """The load phase: one read of a streamable table (`stream.read`), its holdout hashed as `load_arrays`
    hashes it or read from the test file; else `load_arrays`."""
    source = stream.streamable(job.path)
    if source is None:
        return load_arrays(job)
    split = stream.Split(0.0 if job.test is not None else job.params.holdout, job.params.seed)
    found = stream.read(source, split)
    users, items, ratings = found.held
    skipped, problems = 0, list[str]()
    if job.test is not None:  # the predefined test file is the holdout
        test = read_any(job.test, job.skip_bad_rows)
        users, items = test.frame[USER].to_numpy(np.int32), test.frame[ITEM].to_numpy(np.int32)
        ratings, skipped, problems = test.frame[RATING].to_numpy(np.float32), test.skipped, test.problems

    n_ratings = found.n_ratings + (len(ratings) if job.test is not None else 0)
    loaded = Loaded(np.flatnonzero(found.user_index >= 0), np.flatnonzero(found.item_index >= 0), users, items,
                    ratings, bool(split.fraction) or job.test is not None, n_ratings, skipped, problems,
                    _distinct(found.seen_users, users), _distinct(found.seen_items, items))
    return stream.Streamed(source, split, found), loaded


def _distinct(seen: np.ndarray, held: np.ndarray) -> int:
    """Distinct ids of the table (`seen`, a bool table over its id range) and of `held` together."""
    marks, inside = seen.copy(), held < len(seen)
    marks[held[inside]] = True
    return int(marks.sum()) + len(np.unique(held[~inside]))


def fit(job: Job, training: Training | stream.Streamed, device: torch.device) -> Fitted:
    """Group the ratings both ways and train: a streamed table's sides built from it (`Streamed.sides`);
    arrays moved to the device, encoded (one byte a rating where they fit, `als.encode`) and grouped where
    they lie (`in_place`). The by-user side is all that is kept of the training ratings."""
    rank = job.params.rank
    if isinstance(training, stream.Streamed):
        by_user, by_item = training.sides(rank, device)
    else:
        users, items, values = (torch.from_numpy(a).to(device) for a in training.take())
        ratings = torch_als.encode(values)
        del values
        by_user = torch_als.user_side(users, items, ratings, training.n_users, training.n_items, rank, in_place=True)
        del users, items, ratings
        by_item = torch_als.item_side(by_user, training.n_items, rank)
    model = torch_als.fit_sides(by_user, by_item, job.params)
    return Fitted(model, by_user, Runtime(torch=TorchRuntime(torch.__version__, str(device), torch.get_num_threads())))


def run(job: Job, timer: PhaseTimer) -> Outcome:
    """The torch engine: `load` and `fit` in the shared phases."""
    return run_phases(job, timer, load, fit)
