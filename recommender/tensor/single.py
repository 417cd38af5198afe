"""The single-node PyTorch recommender (`impl torch`): this suite's own ALS (recommender/tensor/als.py)
on one device, inside the phases every single-process engine shares (recommender/tensor/phases.py)."""

from __future__ import annotations

import torch

from recommender.engine import Job, Outcome
from recommender.result import Runtime, TorchRuntime
from recommender.tensor import als as torch_als
from recommender.tensor.phases import Fitted, Training
from recommender.tensor.phases import run as run_phases
from recommender.timing import PhaseTimer


def fit(job: Job, training: Training, device: torch.device) -> Fitted:
    """Move the ratings to the device, group them both ways and train. The by-user side is all that is
    kept of the training ratings: it is grouped where the arrays lie (`in_place`)."""
    users, items, ratings = (torch.from_numpy(a).to(device) for a in training.take())
    by_user = torch_als.user_side(users, items, ratings, training.n_users, training.n_items, job.params.rank,
                                  in_place=True)
    del users, items, ratings
    model = torch_als.fit_sides(by_user, torch_als.item_side(by_user, training.n_items, job.params.rank),
                                job.params)
    return Fitted(model, by_user, Runtime(torch=TorchRuntime(torch.__version__, str(device), torch.get_num_threads())))


def run(job: Job, timer: PhaseTimer) -> Outcome:
    """The torch engine: `fit` in the shared phases."""
    return run_phases(job, timer, fit)
