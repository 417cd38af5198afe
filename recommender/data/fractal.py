"""Fractal expansion of a rating matrix (Belletti et al. 2019, arXiv 1901.08910), in numpy and scipy.

A base rating matrix B (n_users x n_items) is first reduced to a small R x C matrix P of
keep-probabilities that has B's top singular values (the paper's algorithm 2). The expansion is
then the randomized Kronecker product P (x) B: block (a, b) is B with its rows and columns
shuffled, each rating kept with probability P[a, b] and keeping its rating value (the
rating-preserving variant); user a*n_users + u, item b*n_items + i. Every block depends on
(seed, a, b) alone, so any task can make any block.

The reduction follows the MLPerf variant (mlcommons/training `data_generation/
fractal_graph_expansions`, which made `ml-20mx16x32`): the SVD is of the binary interaction
matrix, and the resized product is folded into [0, 1] by |M| / max |M|. As the generative-
recommenders variant does with its dropout bounds, the result is then clipped to
[P_MIN, P_MAX] so that no block comes out empty. The resizing of the singular vectors is ours:
mean over equal runs of rows when shrinking (anti-aliased, as skimage's resize is by default),
linear interpolation at cell centres when growing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # scipy is imported where the reduction runs: reading an expansion needs none
    import scipy.sparse as sp

from recommender.data.formats import INT32_MAX
from recommender.data.readers import ITEM, RATING, USER

FRACTAL = "fractal:"
P_MIN, P_MAX = 0.01, 1.0
_SHAPE = re.compile(r"^([1-9][0-9]*)x([1-9][0-9]*)$")
DENSE_SVD_LIMIT = 100  # up to this many rows or columns a dense SVD is as cheap and exact


@dataclass(frozen=True)
class FractalSpec:
    """`fractal:BASE:RxC[:SEED]`: expand BASE by R in users and C in items."""

    base: str
    rows: int
    cols: int
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.base:
            raise ValueError("the base data set of a fractal expansion is empty")
        if self.rows < 1 or self.cols < 1 or self.seed < 0:
            raise ValueError(f"bad fractal expansion {self.rows}x{self.cols} seed {self.seed}")

    @property
    def name(self) -> str:
        return f"{FRACTAL}{self.base}:{self.rows}x{self.cols}:{self.seed}"

    @property
    def blocks(self) -> int:
        return self.rows * self.cols


def parse_fractal(name: str) -> FractalSpec:
    """The spec of `fractal:BASE:RxC[:SEED]`; BASE may itself hold colons (`s3://bucket/r.csv`)."""
    usage = f"{name!r}: expected fractal:BASE:RxC or fractal:BASE:RxC:SEED, e.g. fractal:ml-100k:16x32"
    if not name.startswith(FRACTAL):
        raise ValueError(usage)
    parts = name[len(FRACTAL) :].split(":")
    seed = 0
    if len(parts) >= 3 and parts[-1].isdigit() and _SHAPE.match(parts[-2]):
        seed = int(parts.pop())
    if len(parts) < 2:
        raise ValueError(usage)
    shape = _SHAPE.match(parts[-1])
    if shape is None:
        raise ValueError(f"{usage}; {parts[-1]!r} is not RxC with positive integers R and C")
    base = ":".join(parts[:-1])
    if not base:
        raise ValueError(f"{usage}; the base is empty")
    return FractalSpec(base, int(shape.group(1)), int(shape.group(2)), seed)


@dataclass(frozen=True)
class Base:
    """A base rating matrix in coordinate form with dense 0-based row and column indices."""

    users: np.ndarray  # int32 row index of each rating, 0 .. n_users - 1
    items: np.ndarray  # int32 column index of each rating, 0 .. n_items - 1
    ratings: np.ndarray  # float32
    n_users: int
    n_items: int

    @property
    def nnz(self) -> int:
        return len(self.ratings)


def base_from_frame(frame: pd.DataFrame) -> Base:
    """Index the users and items of a (user, item, rating) frame densely, in id order."""
    user_ids, users = np.unique(frame[USER].to_numpy(), return_inverse=True)
    item_ids, items = np.unique(frame[ITEM].to_numpy(), return_inverse=True)
    return Base(
        users.astype(np.int32), items.astype(np.int32), frame[RATING].to_numpy(np.float32),
        len(user_ids), len(item_ids),
    )


def check_id_range(spec: FractalSpec, base: Base) -> None:
    """The expanded ids must stay 32-bit, as every reader requires."""
    if spec.rows * base.n_users - 1 > INT32_MAX or spec.cols * base.n_items - 1 > INT32_MAX:
        raise ValueError(
            f"{spec.name}: {spec.rows * base.n_users:,} users or {spec.cols * base.n_items:,} items "
            "would exceed 32-bit ids"
        )


def interactions(base: Base) -> sp.csr_matrix:
    """The binary user x item matrix of the base (1 where a rating exists)."""
    import scipy.sparse as sp

    ones = np.ones(base.nnz, dtype=np.float64)
    return sp.csr_matrix((ones, (base.users, base.items)), shape=(base.n_users, base.n_items))


def top_svd(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U, s, Vt) of the top `k` singular triplets, s descending; deterministic."""
    import scipy.sparse.linalg as spla

    if min(matrix.shape) <= max(k + 1, DENSE_SVD_LIMIT):
        u, s, vt = np.linalg.svd(matrix.toarray(), full_matrices=False)
        return u[:, :k], s[:k], vt[:k]
    v0 = np.ones(min(matrix.shape)) / np.sqrt(min(matrix.shape))  # fixed start: same result every run
    u, s, vt = spla.svds(matrix, k=k, v0=v0)
    order = np.argsort(s)[::-1]
    return u[:, order], s[order], vt[order]


def resize_rows(matrix: np.ndarray, rows: int) -> np.ndarray:
    """`matrix` with `rows` rows: means of equal runs when shrinking, linear interpolation when growing."""
    n = matrix.shape[0]
    if rows <= n:
        edges = np.linspace(0, n, rows + 1).round().astype(np.int64)
        sums = np.add.reduceat(matrix, edges[:-1], axis=0)
        return sums / np.diff(edges)[:, None]
    centres = (np.arange(rows) + 0.5) * n / rows - 0.5
    columns = [np.interp(centres, np.arange(n), matrix[:, j]) for j in range(matrix.shape[1])]
    return np.stack(columns, axis=1)


def orthonormalise(matrix: np.ndarray) -> np.ndarray:
    """The column-orthonormal matrix closest to `matrix` (its polar factor W Z^T of W S Z^T)."""
    w, _, zt = np.linalg.svd(matrix, full_matrices=False)
    return w @ zt


def reduce_matrix(base: Base, rows: int, cols: int) -> np.ndarray:
    """The R x C matrix with the base's top min(R, C) singular values (the paper's algorithm 2)."""
    k = min(rows, cols)
    u, s, vt = top_svd(interactions(base), k)
    left = orthonormalise(resize_rows(u, rows))
    right = orthonormalise(resize_rows(vt.T, cols))
    padded = np.zeros(k)
    padded[: len(s)] = s  # a base with fewer than k singular values contributes zeros
    return left @ np.diag(padded) @ right.T


def probabilities(base: Base, rows: int, cols: int) -> np.ndarray:
    """Keep-probabilities: the reduced matrix folded into [0, 1] by |M| / max |M|, then clipped."""
    reduced = np.abs(reduce_matrix(base, rows, cols))
    peak = reduced.max()
    scaled = reduced / peak if peak > 0 else np.ones_like(reduced)
    return np.clip(scaled, P_MIN, P_MAX)


def expected_ratings(base: Base, keep: np.ndarray) -> float:
    """The expected size of the expansion: the sum of the probabilities times the base count."""
    return float(keep.sum()) * base.nnz


def bernoulli_indices(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """The ascending indices below `n` kept by independent draws with probability `p`.

    Gaps between kept indices are geometric, so only about n * p numbers are drawn.
    """
    if p >= 1.0:
        return np.arange(n)
    if p <= 0.0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    chunks, last = [], -1
    while True:
        batch = int(n * p + 6 * np.sqrt(n * p * (1 - p)) + 16)  # one batch almost always reaches n
        positions = last + np.cumsum(rng.geometric(p, batch))
        if positions[-1] >= n:
            chunks.append(positions[positions < n])
            return np.concatenate(chunks)
        chunks.append(positions)
        last = int(positions[-1])


def _rng(seed: int, stream: int, *index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *index]))


def expand_block(base: Base, keep: np.ndarray, seed: int, a: int, b: int) -> tuple[np.ndarray, ...]:
    """(users, items, ratings) of block (a, b): shuffled base, each rating kept with P[a, b].

    The block's row shuffle is drawn from (seed, a) and its column shuffle from (seed, b), so the
    expectation of the whole expansion is P (x) B with its rows and columns permuted, whose singular
    values are exactly the products of P's and B's. (MLPerf draws both shuffles per block, which
    keeps the degree distributions but not that spectrum.) The draw of kept ratings is from
    (seed, a, b). Nothing else enters, so any task can make any block. Work is proportional to the
    ratings kept (plus the two permutations), not to the base.
    """
    user_perm = _rng(seed, 0, a).permutation(base.n_users).astype(np.int32)
    item_perm = _rng(seed, 1, b).permutation(base.n_items).astype(np.int32)
    kept = bernoulli_indices(_rng(seed, 2, a, b), base.nnz, float(keep[a, b]))
    users = user_perm[base.users[kept]] + np.int32(a * base.n_users)
    items = item_perm[base.items[kept]] + np.int32(b * base.n_items)
    return users, items, base.ratings[kept]
