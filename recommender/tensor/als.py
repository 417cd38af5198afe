"""ALS on PyTorch with MLlib's explicit objective, on the CPU or a CUDA device.

Minimises sum (r_ui - x_u . y_i)^2 + reg * (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2), MLlib's
"ALS-WR" scaling (each row's regularization grows with its number of ratings). Each half-iteration
solves every row's normal equations at once: the Gram matrices come from one sparse-dense product
of the ratings' indicator matrix with the fixed side's packed outer products, and a batched
Cholesky solves them. Like MLlib, each iteration solves the items first, then the users.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import torch

from recommender.params import ALSParams

GRAM_CHUNK_BYTES = 2**30  # the unpacked k x k systems solved at once


@dataclass(frozen=True)
class Side:
    """The training ratings grouped by the rows of one side (users or items)."""

    indicator: torch.Tensor  # CSR, rows x cols, 1 where a rating exists
    weighted: torch.Tensor  # CSR, rows x cols, the ratings
    counts: torch.Tensor  # ratings per row, float

    @property
    def rows(self) -> int:
        return self.indicator.shape[0]


def make_side(rows: torch.Tensor, cols: torch.Tensor, ratings: torch.Tensor,
              n_rows: int, n_cols: int) -> Side:
    """Group ratings by `rows` (compact int32 indices) into CSR matrices on the tensors' device.

    Rows already in order (a file sorted by user) skip the sort.
    """
    if not bool((rows[1:] >= rows[:-1]).all()):
        rows, order = torch.sort(rows)
        cols, ratings = cols[order], ratings[order]
    counts = torch.bincount(rows, minlength=n_rows)
    crow = torch.zeros(n_rows + 1, dtype=torch.int32, device=rows.device)
    crow[1:] = torch.cumsum(counts, 0)
    size = (n_rows, n_cols)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we rely on matmul only
        warnings.simplefilter("ignore", UserWarning)
        indicator = torch.sparse_csr_tensor(crow, cols, torch.ones_like(ratings), size)
        weighted = torch.sparse_csr_tensor(crow, cols, ratings, size)
    return Side(indicator, weighted, counts.to(ratings.dtype))


@cache
def _packing(k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The upper triangle's (row, col) indices, and for each of the k*k entries its packed slot."""
    upper = torch.triu_indices(k, k, device=device)
    slot = torch.empty(k, k, dtype=torch.int64, device=device)
    slot[upper[0], upper[1]] = torch.arange(upper.shape[1], device=device)
    slot[upper[1], upper[0]] = slot[upper[0], upper[1]]
    return upper, slot.flatten()


def solve_side(side: Side, fixed: torch.Tensor, reg: float, chunk_bytes: int = GRAM_CHUNK_BYTES) -> torch.Tensor:
    """Every row's least-squares factor against the `fixed` factors of the other side.

    A row without ratings gets a zero factor (its system is the identity), never a NaN. The k x k
    systems are unpacked and solved `chunk_bytes` at a time, so rank 128 stays within memory; the
    Cholesky reports no errors (`cholesky_ex`), which keeps the GPU's queue free of host waits.
    """
    k = fixed.shape[1]
    upper, unpack = _packing(k, fixed.device)
    pairs = fixed[:, upper[0]] * fixed[:, upper[1]]  # cols x k(k+1)/2: each y y^T, packed
    packed = side.indicator @ pairs  # rows x k(k+1)/2: each row's Gram matrix, packed
    ridge = reg * side.counts + (side.counts == 0).to(fixed.dtype)
    rhs = side.weighted @ fixed  # rows x k
    solved = torch.empty_like(rhs)
    step = max(1, chunk_bytes // (4 * k * k))
    for start in range(0, side.rows, step):
        stop = min(start + step, side.rows)
        gram = packed[start:stop, unpack].view(stop - start, k, k)  # unpacked symmetric, in one gather
        gram.diagonal(dim1=1, dim2=2).add_(ridge[start:stop, None])
        factor, _ = torch.linalg.cholesky_ex(gram)
        solved[start:stop] = torch.cholesky_solve(rhs[start:stop].unsqueeze(-1), factor).squeeze(-1)
    return solved


def initial_factors(n: int, rank: int, seed: int, device: torch.device) -> torch.Tensor:
    """Gaussian rows scaled to unit length, as MLlib starts (its RNG differs, so values do too)."""
    generator = torch.Generator().manual_seed(seed)
    factors = torch.randn(n, rank, generator=generator, dtype=torch.float32)
    return (factors / factors.norm(dim=1, keepdim=True)).to(device)


@dataclass
class Model:
    users: torch.Tensor  # n_users x rank
    items: torch.Tensor  # n_items x rank

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.users[users] * self.items[items]).sum(dim=1)


def fit(users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor,
        n_users: int, n_items: int, params: ALSParams) -> Model:
    """Train on compact int32 indices and float32 ratings, all on one device."""
    device = ratings.device
    by_user = make_side(users, items, ratings, n_users, n_items)
    by_item = make_side(items, users, ratings, n_items, n_users)
    user_factors = initial_factors(n_users, params.rank, params.seed, device)
    item_factors = torch.zeros(n_items, params.rank, device=device)  # solved first, from the users
    for _ in range(params.iterations):
        item_factors = solve_side(by_item, user_factors, params.reg)
        user_factors = solve_side(by_user, item_factors, params.reg)
    if not bool(torch.isfinite(user_factors).all()):  # the one wait for the device, after the loop
        raise ValueError(f"ALS diverged (non-finite factors) at rank {params.rank} with --reg {params.reg}: "
                         "a row's normal equations were singular; raise --reg")
    return Model(user_factors, item_factors)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a phase's time includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
