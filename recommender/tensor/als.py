"""ALS on PyTorch with MLlib's explicit objective, on the CPU or a CUDA device.

Minimises sum (r_ui - x_u . y_i)^2 + reg * (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2), MLlib's
"ALS-WR" scaling (each row's regularization grows with its number of ratings). Each half-iteration
solves every row's normal equations at once: the Gram matrices come from one sparse-dense product
of the ratings' indicator matrix with the fixed side's packed outer products (on the CPU a column
block at a time, for the cache), and a batched Cholesky solves them (for small ranks on the CPU, one
written over the packed entries of all rows at once). Like MLlib, each iteration solves the items first, then the users.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import torch

from recommender.params import ALSParams

GRAM_CHUNK_BYTES = 2**30  # the k x k systems (packed or unpacked) solved at once
GRAM_BLOCK_BYTES = 8 * 2**20  # the packed outer products one column block reads: a few times a core's L2 cache
PACKED_MAX_RANK = 32  # up to this rank the CPU solves packed systems itself; past it, LAPACK's batched Cholesky
# Keys sorted at once when grouping, past which it sorts a chunk at a time (about 30 bytes of buffers a key).
# On the CPU a chunk about the number of distinct keys: each chunk costs a pass over them, and a smaller sort
# stays in cache (100M keys grouped into 1M here: 1.9 s in chunks of 2^21 against 4.5 s in chunks of 2^25).
SORT_CHUNK_MIN, SORT_CHUNK_MAX = 2**21, 2**25


@dataclass(frozen=True)
class Side:
    """The training ratings grouped by the rows of one side (users or items).

    With `blocks` > 1 the columns are cut into that many equal ranges and the matrices stack one
    rows x cols CSR per range (block b's row r is row b * rows + r): a Gram product then reads one
    range of the fixed side's outer products at a time, from cache rather than from memory.
    """

    indicator: torch.Tensor  # CSR, (blocks * rows) x cols, 1 where a rating exists
    weighted: torch.Tensor  # CSR, (blocks * rows) x cols, the ratings
    counts: torch.Tensor  # ratings per row, float
    blocks: int = 1

    @property
    def rows(self) -> int:
        return self.indicator.shape[0] // self.blocks


def gram_blocks(n_rows: int, n_cols: int, n_ratings: int, rank: int, device: torch.device) -> int:
    """Column blocks for `make_side` so that each block's packed outer products fit `GRAM_BLOCK_BYTES`,
    while a block's row keeps 8 ratings on average (the blocks' products are summed); one on a GPU,
    whose sparse kernels gain nothing from it."""
    if device.type != "cpu":
        return 1
    return max(1, min(-(-n_cols * rank * (rank + 1) * 2 // GRAM_BLOCK_BYTES), n_ratings // (8 * max(n_rows, 1))))


def sort_chunk(n_keys: int, device: torch.device) -> int:
    """The grouping's chunk for keys in [0, n_keys) (see SORT_CHUNK_MIN): one large sort on a GPU."""
    if device.type != "cpu":
        return SORT_CHUNK_MAX
    return min(max(1 << max(n_keys - 1, 0).bit_length(), SORT_CHUNK_MIN), SORT_CHUNK_MAX)


def _grouping(keys: torch.Tensor, n_keys: int, chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """CSR row pointers of int `keys` in [0, n_keys), and the stable order that groups them (None when
    they already are). Past `chunk` keys (default `sort_chunk`) the sort runs a chunk at a time, each
    chunk's keys scattered after those of the chunks before (a counting sort), so its int64 indices stay
    chunk-sized."""
    chunk = sort_chunk(n_keys, keys.device) if chunk is None else chunk
    counts = torch.bincount(keys, minlength=n_keys)
    crow = torch.zeros(n_keys + 1, dtype=torch.int32, device=keys.device)
    crow[1:] = torch.cumsum(counts, 0)
    if bool((keys[1:] >= keys[:-1]).all()):
        return crow, None
    if len(keys) <= chunk:
        return crow, torch.sort(keys, stable=True).indices
    device, size = keys.device, min(chunk, len(keys))
    order = torch.empty(len(keys), dtype=torch.int32, device=device)
    free = crow[:-1].long()  # each key's next free slot
    # One set of chunk buffers for all chunks: fresh pages cost more than the sort on a VM.
    ordered = torch.empty(size, dtype=keys.dtype, device=device)
    index, slot = (torch.empty(size, dtype=torch.int64, device=device) for _ in range(2))
    narrow, step = torch.empty(size, dtype=torch.int32, device=device), torch.arange(size, device=device)
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        m = len(part)
        torch.sort(part, stable=True, out=(ordered[:m], index[:m]))
        seen = torch.bincount(part, minlength=n_keys)
        shift = free - (torch.cumsum(seen, 0) - seen)  # from a position in the sorted chunk to its slot
        torch.index_select(shift, 0, ordered[:m], out=slot[:m]).add_(step[:m])
        order.scatter_(0, slot[:m], narrow[:m].copy_(index[:m]).add_(start))
        free += seen
    return crow, order


def rows_of(side: Side) -> torch.Tensor:
    """Each stored rating's row (user or item index), int32, in the side's order."""
    crow = side.weighted.crow_indices()
    rows = torch.repeat_interleave(crow.diff(), output_size=side.weighted.values().shape[0])
    return rows if side.blocks == 1 else rows.remainder_(side.rows)


def rated(side: Side) -> torch.Tensor:
    """The side's rows x cols indicator in one block (the rated items `topk.top_k` leaves out): its own,
    or regrouped by row from a side in column blocks (the indicator's values are all ones, so they
    need no reordering: only the columns are permuted, 4 bytes a rating kept)."""
    if side.blocks == 1:
        return side.indicator
    crow, order = _grouping(rows_of(side), side.rows)
    cols = side.indicator.col_indices()
    return _csr(crow, cols if order is None else cols.index_select(0, order), side.indicator.values(),
                (side.rows, side.indicator.shape[1]))


def _csr(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A CSR matrix of these parts, sharing them (no copy), without torch's beta warning."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we rely on matmul only
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, size)


def make_side(rows: torch.Tensor, cols: torch.Tensor, ratings: torch.Tensor, n_rows: int, n_cols: int,
              blocks: int = 1, ones: torch.Tensor | None = None, in_place: bool = False) -> Side:
    """Group ratings by `rows` (compact int32 indices) into CSR matrices on the tensors' device,
    in `blocks` column ranges (see `Side`). Rows already in order (a file sorted by user) skip the sort.
    `ones`, at least as long as `ratings`, gives the indicator's values: one tensor can serve both sides.
    `in_place` lets the grouping overwrite the three inputs (the keys are built in `rows`, and `cols` and
    `ratings` are permuted where they lie): a caller done with them keeps 8 bytes a rating fewer at the peak."""
    counts = torch.bincount(rows, minlength=n_rows)
    wide = blocks * n_rows > torch.iinfo(torch.int32).max
    if blocks == 1:
        keys = rows
    elif in_place and not wide:  # 4 bytes a rating: the keys where the rows were
        keys = rows.add_((cols // -(-n_cols // blocks)).mul_(n_rows))
    else:  # one new key array, 4 bytes a rating (8 past 2^31 block rows)
        keys = (cols.long() if wide else cols) // -(-n_cols // blocks)
        keys.mul_(n_rows).add_(rows)
    crow, order = _grouping(keys, blocks * n_rows)
    del keys
    if order is not None and in_place:  # one permuted copy at a time
        cols.copy_(cols.index_select(0, order))
        ratings.copy_(ratings.index_select(0, order))
    elif order is not None:
        cols, ratings = cols.index_select(0, order), ratings.index_select(0, order)  # faster than [order]
    del order
    size = (blocks * n_rows, n_cols)
    values = torch.ones_like(ratings) if ones is None else ones[:len(ratings)]
    return Side(_csr(crow, cols, values, size), _csr(crow, cols, ratings, size), counts.to(ratings.dtype), blocks)


def user_side(users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor, n_users: int, n_items: int,
              rank: int, in_place: bool = False) -> Side:
    """The ratings grouped by user, in the column blocks `gram_blocks` picks for `rank` (`in_place`: `make_side`)."""
    return make_side(users, items, ratings, n_users, n_items,
                     gram_blocks(n_users, n_items, len(ratings), rank, ratings.device), in_place=in_place)


def item_side(by_user: Side, n_items: int, rank: int) -> Side:
    """The ratings grouped by item, read from `by_user` (so the caller may free its own copies first)
    and sharing its indicator's ones."""
    n, device = by_user.weighted.values().shape[0], by_user.counts.device
    return make_side(by_user.weighted.col_indices(), rows_of(by_user), by_user.weighted.values(), n_items,
                     by_user.rows, gram_blocks(n_items, by_user.rows, n, rank, device), by_user.indicator.values())


@cache
def _packing(k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The upper triangle's (row, col) indices, and for each of the k*k entries its packed slot."""
    upper = torch.triu_indices(k, k, device=device)
    slot = torch.empty(k, k, dtype=torch.int64, device=device)
    slot[upper[0], upper[1]] = torch.arange(upper.shape[1], device=device)
    slot[upper[1], upper[0]] = slot[upper[0], upper[1]]
    return upper, slot.flatten()


def _summed(side: Side, product: torch.Tensor) -> torch.Tensor:
    """A (blocks * rows) x m product of the side's matrices, summed over the column blocks."""
    return product if side.blocks == 1 else product.view(side.blocks, side.rows, -1).sum(0)


def solve_side(side: Side, fixed: torch.Tensor, reg: float, chunk_bytes: int = GRAM_CHUNK_BYTES) -> torch.Tensor:
    """Every row's least-squares factor against the `fixed` factors of the other side.

    A row without ratings gets a zero factor (its system is the identity), never a NaN. The systems
    are solved `chunk_bytes` at a time, so rank 128 stays within memory. A failed Cholesky is not
    reported (NaN factors, or `cholesky_ex`), which keeps a GPU's queue free of host waits.
    """
    k = fixed.shape[1]
    upper, unpack = _packing(k, fixed.device)
    pairs = fixed[:, upper[0]] * fixed[:, upper[1]]  # cols x k(k+1)/2: each y y^T, packed
    packed = _summed(side, side.indicator @ pairs)  # rows x k(k+1)/2: each row's Gram matrix, packed
    ridge = reg * side.counts + (side.counts == 0).to(fixed.dtype)
    rhs = _summed(side, side.weighted @ fixed)  # rows x k
    if fixed.device.type == "cpu" and k <= PACKED_MAX_RANK:
        return _solve_packed(packed, ridge, rhs, chunk_bytes)
    solved = torch.empty_like(rhs)
    step = max(1, chunk_bytes // (4 * k * k))
    for start in range(0, side.rows, step):
        stop = min(start + step, side.rows)
        gram = packed[start:stop, unpack].view(stop - start, k, k)  # unpacked symmetric, in one gather
        gram.diagonal(dim1=1, dim2=2).add_(ridge[start:stop, None])
        factor, _ = torch.linalg.cholesky_ex(gram)
        solved[start:stop] = torch.cholesky_solve(rhs[start:stop].unsqueeze(-1), factor).squeeze(-1)
    return solved


def _solve_packed(packed: torch.Tensor, ridge: torch.Tensor, rhs: torch.Tensor, chunk_bytes: int) -> torch.Tensor:
    """The packed systems (plus `ridge` on their diagonals) solved by a Cholesky written out over the
    packed entries, each step one vector operation on all rows of a chunk: small systems cost LAPACK
    more in per-matrix overhead than in arithmetic. The same factorisation, so the same factors."""
    k = rhs.shape[1]
    starts = [j * k - j * (j - 1) // 2 for j in range(k + 1)]  # packed row j of the upper factor U: U[j, j:]
    solved = torch.empty_like(rhs)
    step = max(1, chunk_bytes // (4 * packed.shape[1]))
    for start in range(0, len(rhs), step):
        stop = min(start + step, len(rhs))
        u = packed[start:stop].t().contiguous()  # entries x rows: each entry one contiguous vector
        x = rhs[start:stop].t().contiguous()
        u[starts[:-1]] += ridge[start:stop]
        for j in range(k):  # A = U^T U, row by row, with the forward solve U^T z = b alongside
            row = u[starts[j] : starts[j + 1]]
            for m in range(j):
                above = u[starts[m] + j - m : starts[m + 1]]  # U[m, j:]
                row.addcmul_(above, above[0], value=-1)
            pivot = row[0].sqrt_()
            row[1:].div_(pivot)
            x[j].div_(pivot)
            x[j + 1 :].addcmul_(row[1:], x[j], value=-1)
        for j in reversed(range(k)):  # back substitution U x = z
            row = u[starts[j] : starts[j + 1]]
            if j < k - 1:
                x[j].sub_(torch.linalg.vecdot(row[1:], x[j + 1 :], dim=0))
            x[j].div_(row[0])
        solved[start:stop] = x.t()
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

    def predict(self, users: torch.Tensor, items: torch.Tensor, chunk: int = 2**18) -> torch.Tensor:
        """Each (user, item) pair's score; a chunk of pairs at a time, so the gathered factors stay in cache."""
        scores = torch.empty(len(users), dtype=self.users.dtype, device=self.users.device)
        for start in range(0, len(users), chunk):
            stop = start + chunk
            torch.linalg.vecdot(self.users.index_select(0, users[start:stop]),
                                self.items.index_select(0, items[start:stop]), out=scores[start:stop])
        return scores


def fit(users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor,
        n_users: int, n_items: int, params: ALSParams) -> Model:
    """Train on compact int32 indices and float32 ratings, all on one device."""
    by_user = user_side(users, items, ratings, n_users, n_items, params.rank)
    return fit_sides(by_user, item_side(by_user, n_items, params.rank), params)


def fit_sides(by_user: Side, by_item: Side, params: ALSParams) -> Model:
    """Train on the ratings grouped both ways (`user_side`, `item_side`)."""
    device = by_user.counts.device
    user_factors = initial_factors(by_user.rows, params.rank, params.seed, device)
    item_factors = torch.zeros(by_item.rows, params.rank, device=device)  # solved first, from the users
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
