"""The `implicit` library's CPU ALS (`impl implicit`; Frederickson's benfred/implicit 0.7, Cython and OpenMP):
implicit feedback only, conjugate gradient (its default) or Cholesky, in the shared phases.

How its objective differs from MLlib's, and how it is given MLlib's problem (recommender/peers/fair.py):
- its matrix entries are the confidences themselves (c = alpha * r by default): it is fed 1 + alpha |r|, signed
  for p (`fair.signed_confidence`), with its own alpha at 1, so c and p equal MLlib's;
- its lambda is not scaled by a row's count: it gets `fair.unscaled_reg`, MLlib's total penalty on rows of equal
  norm. The objectives then differ in how the penalty is spread over rows, which the report says;
- it starts from uniform factors in [0, 0.01) from `--seed`, solves users first, and takes `--cg-steps` steps.
Its BLAS is held to one thread while it fits, as its documentation asks (it runs its own `--threads`).
"""

from __future__ import annotations

from importlib.metadata import version

import torch

from recommender.engine import Job, Outcome
from recommender.peers import fair
from recommender.result import LibraryRuntime, Runtime, TorchRuntime
from recommender.tensor import als as torch_als
from recommender.tensor.phases import Fitted, Training, load_arrays
from recommender.tensor.phases import run as run_phases
from recommender.timing import PhaseTimer


def fit(job: Job, training: Training, device: torch.device) -> Fitted:
    """Fit `implicit`'s AlternatingLeastSquares to MLlib's confidences; its factors are ranked by torch."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    params = job.params
    threads = job.threads or torch.get_num_threads()
    ratings = fair.user_items(training)
    confidence = ratings.copy()
    confidence.data = fair.signed_confidence(ratings.data, params.alpha)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.rank, iterations=params.iterations, alpha=1.0, use_cg=params.solver == "cg",
            regularization=fair.unscaled_reg(params, ratings.nnz, *ratings.shape), num_threads=threads,
            random_state=params.seed)
        model.cg_steps = params.cg_steps
        model.fit(confidence, show_progress=False)
    del confidence
    factors = torch_als.Model(torch.from_numpy(model.user_factors).to(device),
                              torch.from_numpy(model.item_factors).to(device))
    runtime = Runtime(torch=TorchRuntime(torch.__version__, str(device), torch.get_num_threads()),
                      library=LibraryRuntime("implicit", version("implicit"), threads))
    return Fitted(factors, fair.by_user(ratings, device), runtime)


def run(job: Job, timer: PhaseTimer) -> Outcome:
    """The implicit engine: `fit` in the shared phases."""
    return run_phases(job, timer, load_arrays, fit)
