"""ALS on PyTorch with MLlib's two objectives, on the CPU or a CUDA device, solved exactly or by conjugate gradient.

Explicit (MLlib's default "ALS-WR"): minimises sum_observed (r_ui - x_u . y_i)^2 + reg * (sum_u n_u |x_u|^2 +
sum_i n_i |y_i|^2), each row's regularization scaled by its number of ratings n. Row u's normal equations:
(sum_{i rated} y_i y_i^T + reg n_u I) x_u = sum_i r_ui y_i.

Implicit (MLlib's implicitPrefs: Hu, Koren and Volinsky 2008, as Spark's ALS.scala extends it to ratings <= 0):
every pair holds a preference p (1 where r > 0, else 0, and 0 for every unrated pair) with confidence
c = 1 + alpha |r| (1 where unrated); minimises sum_all_pairs c (p - x_u . y_i)^2 + reg * (sum_u n+_u |x_u|^2 +
sum_i n+_i |y_i|^2), n+ a row's count of ratings > 0 (MLlib's numExplicits). Row u's normal equations:
(Y^T Y + sum_{i rated} alpha |r_ui| y_i y_i^T + reg n+_u I) x_u = sum_{r_ui > 0} (1 + alpha r_ui) y_i, where Y^T Y,
the Gram of the whole fixed side, is computed once a half-iteration (`gram_of`; the distributed engine all-reduces it).

Both solvers read the ratings a part at a time (`_parts`: about a million ratings of one column block, each part's
sums added into its rows), so no product is ever ratings x k, nor stacked over the column blocks. A side keeps
5 bytes a rating where the ratings fit one-byte codes (`Ratings`: an int32 column and an int8 code), each part's
ratings decoded as it is read and its CSR pattern's ones shared with the other parts.
Cholesky (solver "cholesky", exact): every row's Gram matrix comes from sparse-dense products of the ratings with
the fixed side's packed outer products (on the CPU a column block at a time, for the cache), and a batched
Cholesky solves them (for small ranks on the CPU, one written over the packed entries of all rows at once):
about nnz k^2 + rows k^3 a half-iteration.
Conjugate gradient (solver "cg", Takacs et al. 2011, as the `implicit` library): `cg_steps` steps a half-iteration,
warm-started from the side's previous factors, matrix-free: a step's A_u p_u for all rows is every rating's
y_i . p_u (a sampled dense-dense product) summed back over the y_i (a sparse-dense product), plus Y^T Y p_u for
implicit: about 2 nnz k + rows k^2 a step, neither k^3 nor nnz k^2. The first item solve, with no item factors yet,
starts from zeros.
Like MLlib, each iteration solves the items first, then the users.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

import torch

from recommender.params import SOLVERS, ALSParams

GRAM_CHUNK_BYTES = 2**30  # the k x k systems (packed or unpacked) solved at once
GRAM_BLOCK_BYTES = 8 * 2**20  # the packed outer products one column block reads: a few times a core's L2 cache
PACKED_MAX_RANK = 32  # up to this rank the CPU solves packed systems itself; past it, LAPACK's batched Cholesky
# Keys sorted at once when grouping, past which it sorts a chunk at a time (about 30 bytes of buffers a key).
# On the CPU a chunk about the number of distinct keys: each chunk costs a pass over them, and a smaller sort
# stays in cache (100M keys grouped into 1M here: 1.9 s in chunks of 2^21 against 4.5 s in chunks of 2^25).
SORT_CHUNK_MIN, SORT_CHUNK_MAX = 2**21, 2**25
# Ratings in one part of a product over a side's ratings (`_parts`; CG's sampled products hold 12 bytes a rating
# of it: each dot product and a copy of its indices); a GPU takes its whole side at once, up to the larger chunk.
PRODUCT_CHUNK_CPU, PRODUCT_CHUNK_GPU = 2**20, 2**26
GRAM_ROWS = 2**14  # factor rows a float64 Gram accumulates at a time (float32 sums over 2M rows lose 1e-3)
OBJECTIVE_CHUNK = 2**16  # ratings the objective gathers at a time, in float64


@dataclass(frozen=True)
class Solve:
    """How a half-iteration sets up and solves each row's normal equations (see the module docstring)."""

    reg: float
    implicit: bool = False
    alpha: float = 1.0  # implicit: confidence 1 + alpha |r|
    solver: str = "cholesky"  # one of params.SOLVERS
    cg_steps: int = 3  # conjugate-gradient steps a half-iteration

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver {self.solver!r}: expected one of {', '.join(SOLVERS)}")

    @classmethod
    def of(cls, params: ALSParams) -> Solve:
        """The solve that `params` ask for."""
        return cls(params.reg, params.implicit, params.alpha, params.solver, params.cg_steps)


CODE_STEPS = (1.0, 0.5)  # rating steps that `encode` tries: whole stars, then MovieLens' half stars
CODE_LIMIT = 127  # the largest |code| of an int8


@dataclass(frozen=True)
class Ratings:
    """Ratings in a side's order, as compact as their values allow: int8 codes times `step` where every
    rating is a whole multiple of one of CODE_STEPS within CODE_LIMIT of them (1 byte a rating: MovieLens'
    stars and half stars, the 0/1 views), else float32 values (`step` None)."""

    stored: torch.Tensor  # int8 codes, or float32 ratings
    step: float | None = None

    def __len__(self) -> int:
        return self.stored.shape[0]

    def __getitem__(self, at: slice) -> torch.Tensor:
        """These ratings' float32 values (a new array where they are codes)."""
        part = self.stored[at]
        return part if self.step is None else part.to(torch.float32).mul_(self.step)

    def values(self) -> torch.Tensor:
        """All the float32 values: 4 bytes a rating more where they are codes."""
        return self[:]

    def select(self, order: torch.Tensor) -> Ratings:
        """These ratings permuted by `order`."""
        return Ratings(self.stored.index_select(0, order), self.step)

    def part(self, start: int, stop: int) -> Ratings:
        """A range of them, sharing their storage."""
        return Ratings(self.stored[start:stop], self.step)


def fits(ratings: torch.Tensor, step: float) -> bool:
    """Whether int8 codes times `step` give back every one of the float32 `ratings` exactly."""
    scaled = ratings.div(step).round_()
    return bool((scaled.abs() <= CODE_LIMIT).all()) and bool((scaled.mul_(step) == ratings).all())


def codes(ratings: torch.Tensor, step: float) -> torch.Tensor:
    """The int8 codes of ratings that `fits` their step."""
    return ratings.div(step).round_().to(torch.int8)


def encode(ratings: torch.Tensor) -> Ratings:
    """float32 `ratings` as int8 codes where a step of CODE_STEPS gives back every value exactly, else the
    ratings themselves."""
    for step in CODE_STEPS if len(ratings) else ():
        if fits(ratings, step):
            return Ratings(codes(ratings, step), step)
    return Ratings(ratings)


@dataclass(frozen=True)
class Side:
    """The training ratings grouped by the rows of one side (users or items), as CSR arrays.

    With `blocks` > 1 the columns are cut into that many equal ranges and the arrays stack one
    rows x cols CSR per range (block b's row r is row b * rows + r): a Gram product then reads one
    range of the fixed side's outer products at a time, from cache rather than from memory.
    Both objectives use these arrays alone, whatever the ratings' signs: a half-iteration's products
    run a part of the ratings at a time (`_parts`), weighting each part's ratings (|r|, c * p) as it goes.
    """

    crow: torch.Tensor  # int32, blocks * rows + 1: the CSR row pointers
    cols: torch.Tensor  # int32, a column (the other side's row) for each rating
    ratings: Ratings  # in the order of `cols`
    counts: torch.Tensor  # ratings per row, float: the explicit objective's regularization scale n
    positives: torch.Tensor  # ratings > 0 per row, float: the implicit one's n+ (`counts` itself if all are > 0)
    n_cols: int
    blocks: int = 1

    @property
    def rows(self) -> int:
        return (self.crow.shape[0] - 1) // self.blocks

    def to(self, device: torch.device) -> Side:
        """The side on `device` (itself where it is there already)."""
        counts, ratings = self.counts.to(device), Ratings(self.ratings.stored.to(device), self.ratings.step)
        return Side(self.crow.to(device), self.cols.to(device), ratings, counts,
                    counts if self.all_positive else self.positives.to(device), self.n_cols, self.blocks)

    def matrix(self) -> torch.Tensor:
        """The ratings as one CSR matrix, (blocks * rows) x cols, values decoded (4 bytes a rating more)."""
        return _csr(self.crow, self.cols, self.ratings.values(), (self.crow.shape[0] - 1, self.n_cols))

    @property
    def all_positive(self) -> bool:
        """Whether every rating is > 0, as `make_side` records it (one tensor for both counts): the implicit
        weights then need no |r| and no mask."""
        return self.positives is self.counts


def gram_blocks(n_rows: int, n_cols: int, n_ratings: int, rank: int, device: torch.device) -> int:
    """Column blocks for `make_side` so that each block's packed outer products fit `GRAM_BLOCK_BYTES`,
    while a block's row keeps 8 ratings on average (each block adds into the same rows); one on a GPU,
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
    rows = torch.repeat_interleave(side.crow.diff(), output_size=side.cols.shape[0])
    return rows if side.blocks == 1 else rows.remainder_(side.rows)


def rated(side: Side) -> torch.Tensor:
    """The side's rows x cols pattern in one block (the rated items `topk.top_k` leaves out, which reads
    its row pointers and columns only: its values are one 1 broadcast): the side's own arrays, or regrouped
    by row from a side in column blocks (only the columns permuted, 4 bytes a rating kept)."""
    crow, cols = side.crow, side.cols
    if side.blocks > 1:
        crow, order = _grouping(rows_of(side), side.rows)
        cols = cols if order is None else cols.index_select(0, order)
    ones = torch.ones(1, device=cols.device).expand(cols.shape[0])
    return _csr(crow, cols, ones, (side.rows, side.n_cols))


def _csr(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A CSR matrix of these parts, sharing them (no copy), without torch's beta warning."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we rely on matmul only
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, size)


def make_side(rows: torch.Tensor, cols: torch.Tensor, ratings: Ratings, n_rows: int, n_cols: int,
              blocks: int = 1, in_place: bool = False) -> Side:
    """Group ratings by `rows` (compact int32 indices) into CSR arrays on the tensors' device,
    in `blocks` column ranges (see `Side`). Rows already in order (a file sorted by user) skip the sort.
    `in_place` lets the grouping overwrite the three inputs (the keys are built in `rows`, and `cols` and
    the ratings are permuted where they lie): a caller done with them keeps 5 to 8 bytes a rating fewer
    at the peak."""
    counts = torch.bincount(rows, minlength=n_rows).to(torch.float32)
    positives = counts if all_positive(ratings) else torch.bincount(
        rows, weights=(ratings.stored > 0).to(torch.float32), minlength=n_rows)
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
        ratings.stored.copy_(ratings.stored.index_select(0, order))
    elif order is not None:
        cols, ratings = cols.index_select(0, order), ratings.select(order)  # faster than [order]
    del order
    return Side(crow, cols, ratings, counts, positives, n_cols, blocks)


def all_positive(ratings: Ratings) -> bool:
    """Whether every rating is > 0 (a NaN is not), read without a per-rating temporary."""
    return len(ratings) == 0 or bool(ratings.stored.min() > 0)


def user_side(users: torch.Tensor, items: torch.Tensor, ratings: Ratings, n_users: int, n_items: int,
              rank: int, in_place: bool = False) -> Side:
    """The ratings grouped by user, in the column blocks `gram_blocks` picks for `rank` (`in_place`: `make_side`)."""
    return make_side(users, items, ratings, n_users, n_items,
                     gram_blocks(n_users, n_items, len(ratings), rank, users.device), in_place=in_place)


def item_side(by_user: Side, n_items: int, rank: int) -> Side:
    """The ratings grouped by item, read from `by_user` (so the caller may free its own copies first)."""
    n, device = len(by_user.ratings), by_user.counts.device
    return make_side(by_user.cols, rows_of(by_user), by_user.ratings, n_items, by_user.rows,
                     gram_blocks(n_items, by_user.rows, n, rank, device))


@cache
def _packing(k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The upper triangle's (row, col) indices, and for each of the k*k entries its packed slot."""
    upper = torch.triu_indices(k, k, device=device)
    slot = torch.empty(k, k, dtype=torch.int64, device=device)
    slot[upper[0], upper[1]] = torch.arange(upper.shape[1], device=device)
    slot[upper[1], upper[0]] = slot[upper[0], upper[1]]
    return upper, slot.flatten()


def _with_values(matrix: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The CSR `matrix`'s pattern (shared, not copied) with other values."""
    return _csr(matrix.crow_indices(), matrix.col_indices(), values, (matrix.shape[0], matrix.shape[1]))


def gram_of(factors: torch.Tensor) -> torch.Tensor:
    """The k x k Gram matrix Y^T Y of these rows (float32), summed in float64 a chunk of rows at a time:
    float32 sums over 2M rows lose 1e-3 of it, and the implicit objective adds it to every row's system."""
    return _gram64(factors).to(factors.dtype)


def _gram64(factors: torch.Tensor) -> torch.Tensor:
    """Y^T Y in float64, `GRAM_ROWS` rows at a time (their float64 copy stays small)."""
    k = factors.shape[1]
    total = torch.zeros(k, k, dtype=torch.float64, device=factors.device)
    for start in range(0, len(factors), GRAM_ROWS):
        rows = factors[start : start + GRAM_ROWS].double()
        total.addmm_(rows.t(), rows)
    return total


def _counts(side: Side, how: Solve) -> torch.Tensor:
    """Each row's count that scales its regularization: n (explicit) or n+ (implicit)."""
    return side.positives if how.implicit else side.counts


def _ridge(side: Side, how: Solve) -> torch.Tensor:
    """Each row's reg * n (n+ for implicit), and 1 where that count is 0: such a row's right-hand side is 0,
    so its factor is 0 whatever its system, and the 1 keeps the system nonsingular (never a NaN)."""
    counts = _counts(side, how)
    return how.reg * counts + (counts == 0).to(counts.dtype)


@dataclass(frozen=True)
class _Part:
    """A range of a side's CSR rows, about `product_chunk` ratings, one column block's: its pattern and ratings
    (views of the side's, but for its own row pointers and its pattern's ones, which all parts share), and the
    side's rows [start, stop) they belong to. A product over the parts adds each into its rows: no stacked
    (blocks * rows) x m product, no per-rating array but the part's."""

    pattern: torch.Tensor  # CSR, (stop - start) x cols, ones
    ratings: Ratings  # the part's ratings, in the pattern's order
    start: int
    stop: int


def product_chunk(device: torch.device) -> int:
    """Ratings in one part of a product over a side's ratings (see PRODUCT_CHUNK_CPU)."""
    return PRODUCT_CHUNK_CPU if device.type == "cpu" else PRODUCT_CHUNK_GPU


def _parts(side: Side, chunk: int) -> list[_Part]:
    """The side's CSR rows cut, in each column block, into ranges of equal row counts, `chunk` ratings on
    average; one host wait reads their bounds, none where the whole side is one part."""
    n, crow, cols = len(side.ratings), side.crow, side.cols
    step = max(1, chunk * side.rows * side.blocks // max(n, 1))  # rows a part
    if side.blocks == 1 and step >= side.rows:
        ones = torch.ones(n, device=cols.device)
        return [_Part(_csr(crow, cols, ones, (side.rows, side.n_cols)), side.ratings, 0, side.rows)]
    spans = [(lo, min(lo + step, side.rows)) for lo in range(0, side.rows, step)]
    placed = [(block * side.rows + lo, lo, hi) for block in range(side.blocks) for lo, hi in spans]
    # The parts follow each other, each block's rows after the block before's: part j ends where j + 1 starts.
    firsts = torch.tensor([first for first, _, _ in placed] + [side.blocks * side.rows], device=crow.device)
    bounds = crow[firsts].tolist()
    ones = torch.ones(max((end - begin for begin, end in pairwise(bounds)), default=0), device=cols.device)
    parts = []
    for (first, lo, hi), (begin, end) in zip(placed, pairwise(bounds), strict=True):
        pattern = _csr(crow[first : first + hi - lo + 1] - begin, cols[begin:end], ones[: end - begin],
                       (hi - lo, side.n_cols))
        parts.append(_Part(pattern, side.ratings.part(begin, end), lo, hi))
    return parts


def _row_sums(side: Side, parts: list[_Part], dense: torch.Tensor,
              weigh: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """sum_{i rated} w(r_ui) dense_i for every row u, a part at a time; `weigh` maps a part's ratings to
    their weights w (None: 1, the pattern itself)."""
    out = torch.zeros(side.rows, dense.shape[1], dtype=dense.dtype, device=dense.device)
    for part in parts:
        matrix = part.pattern if weigh is None else _with_values(part.pattern, weigh(part.ratings.values()))
        rows = out[part.start : part.stop]
        torch.addmm(rows, matrix, dense, out=rows)
    return out


def _rhs(side: Side, parts: list[_Part], fixed: torch.Tensor, how: Solve) -> torch.Tensor:
    """Each row's right-hand side: sum_i r y_i (explicit), or sum_{r > 0} (1 + alpha r) y_i (implicit)."""
    if how.implicit:
        return _row_sums(side, parts, fixed, lambda ratings: _preferred_confidences(side, ratings, how))
    return _row_sums(side, parts, fixed, lambda ratings: ratings)


def _preferred_confidences(side: Side, ratings: torch.Tensor, how: Solve) -> torch.Tensor:
    """c p of a part's ratings: 1 + alpha r where r > 0, else 0; no mask where all the side's ratings are > 0."""
    confidence = ratings.mul(how.alpha).add_(1)
    return confidence if side.all_positive else confidence.where(ratings > 0, 0)


def _magnitudes(side: Side, ratings: torch.Tensor) -> torch.Tensor:
    """|r| of a part's ratings: the ratings themselves, no per-rating temporary, where all the side's are > 0."""
    return ratings if side.all_positive else ratings.abs()


def solve_side(side: Side, fixed: torch.Tensor, how: Solve, gram: torch.Tensor | None = None,
               start: torch.Tensor | None = None, chunk_bytes: int = GRAM_CHUNK_BYTES) -> torch.Tensor:
    """Every row's factor against the `fixed` factors of the other side, by `how` (see the module docstring).

    `gram`, for implicit only, is the whole fixed side's Y^T Y (`gram_of(fixed)` when None: a caller whose
    `fixed` is not the whole side passes its all-reduced Gram). `start`, for CG only, is the side's previous
    factors (zeros when None). A row without ratings (for implicit, without ratings > 0) gets a zero factor,
    never a NaN. The Cholesky solves `chunk_bytes` of systems at a time, so rank 128 stays within memory,
    and does not report a failed factorisation (NaN factors, or `cholesky_ex`), which keeps a GPU's queue
    free of host waits.
    """
    gram = (gram_of(fixed) if gram is None else gram) if how.implicit else None
    parts = _parts(side, product_chunk(fixed.device))
    if how.solver == "cg":
        return _conjugate_gradient(side, parts, fixed, how, gram, start)
    return _cholesky(side, parts, fixed, how, gram, chunk_bytes)


def _cholesky(side: Side, parts: list[_Part], fixed: torch.Tensor, how: Solve, gram: torch.Tensor | None,
              chunk_bytes: int) -> torch.Tensor:
    """Every row's exact solution, its Gram matrix built and factorised (`solve_side`); `gram`: Y^T Y for
    implicit, None for explicit."""
    k = fixed.shape[1]
    upper, unpack = _packing(k, fixed.device)
    if gram is None:  # explicit: sum_i y y^T; rows x k(k+1)/2, each row's Gram matrix, packed
        packed = _row_sums(side, parts, fixed[:, upper[0]] * fixed[:, upper[1]])
    else:  # implicit: Y^T Y + sum_i |r| (alpha y) y^T, alpha in the packed outer products rather than in the weights
        packed = _row_sums(side, parts, (fixed * how.alpha)[:, upper[0]] * fixed[:, upper[1]],
                           lambda ratings: _magnitudes(side, ratings))
        packed += gram[upper[0], upper[1]]
    ridge, rhs = _ridge(side, how), _rhs(side, parts, fixed, how)
    if fixed.device.type == "cpu" and k <= PACKED_MAX_RANK:
        return _solve_packed(packed, ridge, rhs, chunk_bytes)
    solved = torch.empty_like(rhs)
    step = max(1, chunk_bytes // (4 * k * k))
    for start in range(0, side.rows, step):
        stop = min(start + step, side.rows)
        system = packed[start:stop, unpack].view(stop - start, k, k)  # unpacked symmetric, in one gather
        system.diagonal(dim1=1, dim2=2).add_(ridge[start:stop, None])
        factor, _ = torch.linalg.cholesky_ex(system)
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


def _rated_products(parts: list[_Part], fixed: torch.Tensor, x: torch.Tensor, how: Solve) -> torch.Tensor:
    """sum_{i rated} w_ui (y_i . x_u) y_i for every row u, w = 1 (explicit) or alpha |r| (implicit): each
    part's dot products (a sampled dense-dense product) summed back over its y_i (a sparse-dense one),
    so no ratings x k array is ever formed."""
    out = torch.zeros_like(x)
    for part in parts:
        dots = torch.sparse.sampled_addmm(part.pattern, x[part.start : part.stop], fixed.t(), beta=0.0)
        if how.implicit:
            dots.values().mul_(part.ratings.values().abs()).mul_(how.alpha)
        rows = out[part.start : part.stop]
        torch.addmm(rows, dots, fixed, out=rows)
    return out


def _conjugate_gradient(side: Side, parts: list[_Part], fixed: torch.Tensor, how: Solve, gram: torch.Tensor | None,
                        start: torch.Tensor | None) -> torch.Tensor:
    """`how.cg_steps` conjugate-gradient steps on every row's system at once, from `start` (zeros when None;
    rows whose ridge is the placeholder 1 start from 0, their solution, see `_ridge`). `gram`: Y^T Y for
    implicit, None for explicit. The step sizes guard 0 / 0 (a row already solved stays as it is)."""
    ridge, rhs = _ridge(side, how), _rhs(side, parts, fixed, how)

    def times_a(x: torch.Tensor) -> torch.Tensor:  # A_u x_u for every row
        product = _rated_products(parts, fixed, x, how)
        if gram is not None:
            product.addmm_(x, gram)  # Y^T Y x_u, Y^T Y symmetric
        return product.addcmul_(ridge[:, None], x)

    tiny = torch.finfo(rhs.dtype).tiny
    if start is None:
        x, residual = torch.zeros_like(rhs), rhs
    else:
        x = start * (_counts(side, how) > 0).to(start.dtype)[:, None]
        residual = rhs.sub_(times_a(x))
    direction = residual.clone()
    squared = torch.linalg.vecdot(residual, residual)
    for step in range(how.cg_steps):
        bent = times_a(direction)
        size = squared / torch.linalg.vecdot(direction, bent).clamp_min(tiny)
        x.addcmul_(size[:, None], direction)
        if step + 1 == how.cg_steps:
            break
        residual.addcmul_(size[:, None], bent, value=-1)
        before, squared = squared, torch.linalg.vecdot(residual, residual)
        direction.mul_((squared / before.clamp_min(tiny))[:, None]).add_(residual)
    return x


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
    by_user = user_side(users, items, encode(ratings), n_users, n_items, params.rank)
    return fit_sides(by_user, item_side(by_user, n_items, params.rank), params)


def fit_sides(by_user: Side, by_item: Side, params: ALSParams) -> Model:
    """Train on the ratings grouped both ways (`user_side`, `item_side`). CG warm-starts each side from its
    previous factors; the first item solve, with none yet, starts from zeros (its steps then minimise the
    error over the Krylov space of the right-hand side, with no random guess to undo)."""
    how = Solve.of(params)
    device = by_user.cols.device
    user_factors = initial_factors(by_user.rows, params.rank, params.seed, device)
    item_factors = torch.zeros(by_item.rows, params.rank, device=device)  # solved first, from the users
    for iteration in range(params.iterations):
        item_factors = solve_side(by_item, user_factors, how, start=item_factors if iteration else None)
        user_factors = solve_side(by_user, item_factors, how, start=user_factors)
    if not bool(torch.isfinite(user_factors).all()):  # the one wait for the device, after the loop
        raise ValueError(f"ALS diverged (non-finite factors) at rank {params.rank} with --reg {params.reg}: "
                         "a row's normal equations were singular; raise --reg")
    return Model(user_factors, item_factors)


def targets(ratings: torch.Tensor, implicit: bool) -> torch.Tensor:
    """What the model is fitted to predict for these ratings: the ratings, or for implicit their
    preferences p (1 where r > 0, else 0), as MLlib's prediction column means."""
    return (ratings > 0).to(ratings.dtype) if implicit else ratings


def objective(users: torch.Tensor, items: torch.Tensor, by_user: Side, how: Solve) -> float:
    """The value of the objective the fit minimises (module docstring), summed in float64 without any dense
    users x items matrix: for implicit, sum_all (x . y)^2 = trace((X^T X)(Y^T Y)) plus each rated pair's
    c (p - x . y)^2 - (x . y)^2. `recommender.objective.objective_numpy` is the same in numpy."""
    rows, cols, ratings = rows_of(by_user), by_user.cols, by_user.ratings.values()
    fitted = torch.zeros((), dtype=torch.float64, device=users.device)
    if how.implicit:  # every pair's (x . y)^2, as if unrated
        fitted += (_gram64(users) * _gram64(items)).sum()
    for start in range(0, len(ratings), OBJECTIVE_CHUNK):
        part = slice(start, start + OBJECTIVE_CHUNK)
        score = torch.linalg.vecdot(users.index_select(0, rows[part]).double(),
                                    items.index_select(0, cols[part]).double())
        rating = ratings[part].double()
        if how.implicit:
            confidence = 1 + how.alpha * rating.abs()
            fitted += (confidence * (targets(rating, True) - score) ** 2 - score**2).sum()
        else:
            fitted += ((rating - score) ** 2).sum()
    item_counts = (torch.bincount(cols, weights=targets(ratings, True).double(), minlength=len(items))
                   if how.implicit else torch.bincount(cols, minlength=len(items)).double())
    penalty = (_counts(by_user, how).double() @ users.double().square().sum(1)
               + item_counts @ items.double().square().sum(1))
    return float(fitted + how.reg * penalty)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a phase's time includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
