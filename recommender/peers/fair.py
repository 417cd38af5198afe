"""The settings that give a peer library the suite's (MLlib's) problem as nearly as it allows, and the matrices
the peers read and return.

MLlib (and torch, torch-spark) minimise, for implicit feedback, sum c (p - x.y)^2 + lambda (sum_u n_u |x_u|^2 +
sum_i n_i |y_i|^2), with confidence c = 1 + alpha |r|, preference p = 1 where r > 0, and lambda scaled by each
row's count of ratings n. `implicit` and LensKit's ImplicitMF scale lambda by nothing. No single unscaled
lambda equals a scaled one row by row; `unscaled_reg` gives the one with the same total penalty when every
factor row has the same norm: lambda' (users + items) = lambda (sum n_u + sum n_i) = 2 lambda ratings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recommender.params import ALSParams
from recommender.tensor import als as torch_als
from recommender.tensor.phases import Training


def unscaled_reg(params: ALSParams, n_ratings: int, n_users: int, n_items: int) -> float:
    """The unscaled lambda with MLlib's total penalty on factor rows of equal norm (module docstring)."""
    return params.reg * 2 * n_ratings / max(n_users + n_items, 1)


def signed_confidence(ratings: np.ndarray, alpha: float) -> np.ndarray:
    """MLlib's confidence 1 + alpha |r| as `implicit` reads its matrix: a positive entry is c with p = 1, a
    negative one -c with p = 0 (a rating of 0 is then c = 1, p = 0, as in MLlib)."""
    confidence = (1.0 + alpha * np.abs(ratings)).astype(np.float32)
    return np.where(ratings > 0, confidence, -confidence)


def user_items(training: Training) -> sp.csr_matrix:
    """The training ratings as a users x items CSR matrix of float32 ratings (consumes `training`)."""
    users, items, ratings = training.take()
    matrix = sp.csr_matrix((ratings, (users, items)), shape=(training.n_users, training.n_items), dtype=np.float32)
    matrix.sum_duplicates()  # a no-op on the unique pairs the readers guarantee; sorts each row's columns
    return matrix


def by_user(ratings: sp.csr_matrix, device: torch.device) -> torch_als.Side:
    """The CSR ratings as the shared phases read a fit's training data: one block, already grouped (so
    `make_side` neither sorts nor copies the columns and ratings)."""
    crow = torch.from_numpy(ratings.indptr.astype(np.int32)).to(device)
    rows = torch.repeat_interleave(crow.diff(), output_size=ratings.nnz)
    cols = torch.from_numpy(ratings.indices.astype(np.int32)).to(device)
    return torch_als.make_side(rows, cols, torch_als.encode(torch.from_numpy(ratings.data).to(device)), *ratings.shape)
