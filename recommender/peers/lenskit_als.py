"""LensKit's ALS (`impl lenskit`; lenskit 2025, Rust kernels, Cholesky): `BiasedMFScorer` for explicit
ratings, `ImplicitMFScorer` with --implicit, in the shared phases.

How its objectives differ from MLlib's (recommender/peers/fair.py):
- explicit (BiasedMF): it first fits a global mean and damped user and item biases (LensKit's default damping,
  5) and factorises what they leave; lambda is scaled by each row's count, as MLlib's (its row solve adds
  lambda n I). Its predictions are mean + biases + x.y, so RMSE is comparable and ranking reads the item biases;
- implicit (ImplicitMF, its ratings used as strengths): c = 1 + alpha r and p = 1, as MLlib's for r > 0, so it
  takes positive strengths only; its lambda is not scaled and gets `fair.unscaled_reg`;
- it starts from its own random factors (a generator seeded by `--seed`).
It trains with `--threads` Rayon threads and one BLAS thread (`lenskit.parallel.initialize`, once a process).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd
import torch

from recommender.engine import Job, Outcome
from recommender.peers import fair
from recommender.result import LibraryRuntime, Runtime, TorchRuntime
from recommender.tensor import als as torch_als
from recommender.tensor.phases import Fitted, Training, load_arrays
from recommender.tensor.phases import run as run_phases
from recommender.timing import PhaseTimer


def _scorer(job: Job, n_ratings: int, n_users: int, n_items: int) -> Any:
    """The LensKit scorer of the job's objective, configured with its parameters."""
    from lenskit.als import BiasedMFScorer, ImplicitMFScorer

    params = job.params
    if params.implicit:
        return ImplicitMFScorer(embedding_size=params.rank, epochs=params.iterations, weight=params.alpha,
                                use_ratings=True, regularization=fair.unscaled_reg(params, n_ratings, n_users, n_items))
    return BiasedMFScorer(embedding_size=params.rank, epochs=params.iterations, regularization=params.reg)


def _factors(scorer: Any, implicit: bool) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) factors whose dot products are the scorer's scores: BiasedMF's mean and biases become two
    more columns, [x, 1, mean + b_u] . [y, b_i, 1]."""
    users, items = scorer.user_embeddings, scorer.item_embeddings
    if implicit:
        return users, items
    bias = scorer.bias
    ones_u, ones_i = np.ones((len(users), 1), np.float32), np.ones((len(items), 1), np.float32)
    user_bias = bias.global_bias + (bias.user_biases if bias.user_biases is not None else 0.0)
    item_bias = bias.item_biases if bias.item_biases is not None else np.zeros(len(items), np.float32)
    return (np.hstack([users, ones_u, np.broadcast_to(user_bias, (len(users),))[:, None]]).astype(np.float32),
            np.hstack([items, item_bias[:, None], ones_i]).astype(np.float32))


def fit(job: Job, training: Training, device: torch.device) -> Fitted:
    """Fit LensKit's scorer on a Dataset of the compact ids, whose vocabularies keep their order."""
    import lenskit.parallel
    from lenskit.data import from_interactions_df
    from lenskit.training import TrainingOptions

    params = job.params
    threads = job.threads or torch.get_num_threads()
    if not lenskit.parallel.config._config:  # once a process; the evaluation's torch threads are set back
        lenskit.parallel.initialize(threads=threads, backend_threads=1)
    torch.set_num_threads(threads)
    ratings = fair.user_items(training)
    if params.implicit and ratings.nnz and ratings.data.min() <= 0:
        raise ValueError("--impl lenskit --implicit: LensKit's ImplicitMF reads ratings as positive strengths "
                         f"(c = 1 + alpha r), and this input has ratings down to {ratings.data.min()}; "
                         "use a positives:R:NAME view")
    coo = ratings.tocoo()
    n_users, n_items = ratings.shape
    data = from_interactions_df(pd.DataFrame({"user_id": coo.row, "item_id": coo.col, "rating": coo.data}),
                                users=np.arange(n_users), items=np.arange(n_items))
    del coo
    scorer = _scorer(job, ratings.nnz, n_users, n_items)
    scorer.train(data, TrainingOptions(rng=params.seed))
    users, items = _factors(scorer, params.implicit)
    factors = torch_als.Model(torch.from_numpy(np.ascontiguousarray(users)).to(device),
                              torch.from_numpy(np.ascontiguousarray(items)).to(device))
    runtime = Runtime(torch=TorchRuntime(torch.__version__, str(device), torch.get_num_threads()),
                      library=LibraryRuntime("lenskit", version("lenskit"), threads))
    return Fitted(factors, fair.by_user(ratings, device), runtime)


def run(job: Job, timer: PhaseTimer) -> Outcome:
    """The LensKit engine: `fit` in the shared phases."""
    return run_phases(job, timer, load_arrays, fit)
