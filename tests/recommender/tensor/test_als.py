"""The PyTorch ALS solver against a direct solve of MLlib's normal equations, and its convergence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import ranking
from recommender.objective import objective_numpy
from recommender.params import ALSParams

torch = pytest.importorskip("torch", reason="the PyTorch engine needs torch: pip install -r requirements-torch.txt")

from recommender.tensor import als as torch_als  # noqa: E402
from recommender.tensor.als import Ratings  # noqa: E402
from recommender.tensor.errors import side_errors  # noqa: E402
from recommender.tensor.topk import most_popular, top_k  # noqa: E402

pytestmark = pytest.mark.unit


def random_ratings(n_users: int, n_items: int, density: float, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    return users.astype(np.int32), items.astype(np.int32), rng.uniform(1, 5, len(users)).astype(np.float32)


@pytest.mark.parametrize("rank", [4, torch_als.PACKED_MAX_RANK + 4])  # the packed Cholesky, then LAPACK's
@pytest.mark.parametrize("blocks", [1, 3])
def test_each_row_solves_mllibs_normal_equations(rank: int, blocks: int) -> None:
    u, i, r = random_ratings(30, 20, 0.4, 0)
    fixed = torch.randn(20, rank, generator=torch.Generator().manual_seed(1))
    reg = 0.3
    side = torch_als.make_side(torch.from_numpy(u), torch.from_numpy(i), Ratings(torch.from_numpy(r)), 30, 20, blocks)
    solved = torch_als.solve_side(side, fixed, torch_als.Solve(reg)).double().numpy()
    y = fixed.double().numpy()
    for row in range(30):
        cols = i[u == row]
        a = y[cols].T @ y[cols] + reg * len(cols) * np.eye(rank)
        expected = np.linalg.solve(a, y[cols].T @ r[u == row])
        np.testing.assert_allclose(solved[row], expected, rtol=2e-4, atol=2e-5)


def test_column_blocks_group_each_rows_ratings_by_column_range() -> None:
    u, i, r = random_ratings(30, 20, 0.4, 0)
    order = np.random.default_rng(1).permutation(len(u))  # rows out of order: the counting sort runs
    side = torch_als.make_side(torch.from_numpy(i[order]), torch.from_numpy(u[order]),
                               Ratings(torch.from_numpy(r[order])), 20, 30, blocks=4)
    dense = side.matrix().to_dense().view(4, 20, 30)
    expected = np.zeros((20, 30), np.float32)
    expected[i, u] = r
    for block in range(4):  # columns 8b..8b+7 in block b, nothing elsewhere
        inside = np.zeros(30, bool)
        inside[8 * block : 8 * block + 8] = True
        assert np.array_equal(dense[block].numpy(), np.where(inside, expected, 0))
    assert side.rows == 20 and torch.equal(side.counts, torch.from_numpy(np.bincount(i, minlength=20)).float())


@given(st.lists(st.integers(0, 9), min_size=1, max_size=60))
def test_grouping_is_a_stable_sort(keys: list[int]) -> None:
    crow, order = torch_als._grouping(torch.tensor(keys, dtype=torch.int32), 10)
    expected = torch.sort(torch.tensor(keys), stable=True).indices
    assert torch.equal(order if order is not None else torch.arange(len(keys)), expected)
    assert crow.tolist() == [0, *np.cumsum(np.bincount(keys, minlength=10)).tolist()]


@given(st.lists(st.integers(0, 9), min_size=2, max_size=60), st.integers(1, 7))
def test_grouping_a_chunk_at_a_time_is_the_same_stable_sort(keys: list[int], chunk: int) -> None:
    crow, order = torch_als._grouping(torch.tensor(keys, dtype=torch.int32), 10, chunk=chunk)
    expected = torch.sort(torch.tensor(keys), stable=True).indices
    assert torch.equal(order.long() if order is not None else torch.arange(len(keys)), expected)
    assert crow.tolist() == [0, *np.cumsum(np.bincount(keys, minlength=10)).tolist()]


@pytest.mark.parametrize(("user_blocks", "item_blocks"), [(1, 1), (3, 1), (1, 4), (3, 4)])
def test_the_item_side_read_from_the_user_side_is_the_item_side_of_the_ratings(user_blocks: int,
                                                                               item_blocks: int) -> None:
    u, i, r = random_ratings(30, 20, 0.4, 5)
    order = np.random.default_rng(2).permutation(len(u))
    tu, ti, tr = (torch.from_numpy(a[order]) for a in (u, i, r))
    by_user = torch_als.make_side(tu, ti, Ratings(tr), 30, 20, user_blocks)
    rows = torch_als.rows_of(by_user)  # each stored rating's user, whatever the column blocks
    values = by_user.ratings.values()
    stored = zip(rows.tolist(), by_user.cols.tolist(), values.tolist(), strict=True)
    assert sorted(stored) == sorted(zip(u.tolist(), i.tolist(), r.tolist(), strict=True))
    direct = torch_als.make_side(ti, tu, Ratings(tr), 20, 30, item_blocks)
    read = torch_als.make_side(by_user.cols, torch_als.rows_of(by_user), by_user.ratings, 20, 30, item_blocks)
    assert torch.equal(read.matrix().to_dense(), direct.matrix().to_dense())
    assert torch.equal(read.crow, direct.crow) and torch.equal(read.counts, direct.counts)


@pytest.mark.parametrize("blocks", [1, 4])
def test_a_side_grouped_in_place_is_the_side_grouped_from_copies(blocks: int) -> None:
    u, i, r = random_ratings(30, 20, 0.4, 6)
    order = np.random.default_rng(3).permutation(len(u))
    arrays = [a[order].copy() for a in (u, i, r)]
    rows, cols, ratings = (torch.from_numpy(a) for a in arrays)
    copied = torch_als.make_side(rows, cols, Ratings(ratings), 30, 20, blocks)
    grouped = torch_als.make_side(rows, cols, Ratings(ratings), 30, 20, blocks, in_place=True)
    assert torch.equal(grouped.matrix().to_dense(), copied.matrix().to_dense())
    assert torch.equal(grouped.crow, copied.crow) and torch.equal(grouped.counts, copied.counts)
    # The side's columns and ratings are the inputs' own memory, permuted where they lay.
    assert grouped.cols.data_ptr() == arrays[1].ctypes.data
    assert grouped.ratings.stored.data_ptr() == arrays[2].ctypes.data
    assert not np.array_equal(arrays[2], r[order])  # the ratings were regrouped where they lay


def test_the_sort_chunk_follows_the_keys_on_the_cpu_within_its_bounds() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert torch_als.sort_chunk(1_000_000, cpu) == torch_als.SORT_CHUNK_MIN == 2**21
    assert torch_als.sort_chunk(5_000_000, cpu) == 2**23  # the next power of two
    assert torch_als.sort_chunk(10**9, cpu) == torch_als.SORT_CHUNK_MAX
    assert torch_als.sort_chunk(1_000, cuda) == torch_als.SORT_CHUNK_MAX


def test_gram_blocks_fit_the_cache_on_the_cpu_only() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert torch_als.gram_blocks(27_000, 138_000, 20_000_000, 10, cpu) == 4  # 30 MB of packed pairs
    assert torch_als.gram_blocks(27_000, 138_000, 20_000_000, 10, cuda) == 1
    assert torch_als.gram_blocks(1_000, 138_000, 16_000, 10, cpu) == 2  # 8 ratings a block row at most
    assert torch_als.gram_blocks(100, 40, 400, 10, cpu) == 1


def test_rows_without_ratings_get_zero_factors() -> None:
    side = torch_als.make_side(torch.tensor([0, 0, 2], dtype=torch.int32), torch.tensor([0, 1, 1], dtype=torch.int32),
                               torch_als.encode(torch.tensor([4.0, 3.0, 5.0])), 4, 2)
    solved = torch_als.solve_side(side, torch.ones(2, 3), torch_als.Solve(0.1))
    assert torch.isfinite(solved).all()
    assert solved[1].abs().sum() == 0 and solved[3].abs().sum() == 0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), reg=st.sampled_from([0.01, 0.1, 1.0]))
def test_every_iteration_lowers_the_objective(seed: int, reg: float) -> None:
    """Each half-iteration is an exact minimisation, so the objective can never rise."""
    u, i, r = random_ratings(25, 15, 0.5, seed)
    tensors = torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(r)
    values = []
    for iterations in range(1, 6):
        model = torch_als.fit(*tensors, 25, 15, ALSParams(rank=3, iterations=iterations, reg=reg, seed=seed))
        values.append(objective_numpy(model.users.numpy(), model.items.numpy(), u, i, r, reg, False, 1.0))
    assert all(b <= a * (1 + 1e-5) for a, b in itertools.pairwise(values)), values


def test_a_noise_free_low_rank_matrix_is_recovered() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(40, 3))
    u, i, _ = random_ratings(60, 40, 0.6, 4)
    r = (x[u] * y[i]).sum(1).astype(np.float32)
    model = torch_als.fit(torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(r), 60, 40,
                          ALSParams(rank=3, iterations=40, reg=1e-4, seed=0))
    pred = model.predict(torch.from_numpy(u).long(), torch.from_numpy(i).long()).numpy()
    assert float(((pred - r) ** 2).mean()) < 1e-3 * float((r**2).mean())


@pytest.mark.parametrize("exclude", [False, True])
def test_top_k_is_the_brute_force_ranking(exclude: bool) -> None:
    generator = torch.Generator().manual_seed(2)
    users, items = torch.randn(40, 5, generator=generator), torch.randn(30, 5, generator=generator)
    u, i, r = random_ratings(40, 30, 0.2, 4)
    rated = torch_als.make_side(torch.from_numpy(u), torch.from_numpy(i), Ratings(torch.from_numpy(r)), 40, 30)
    best = top_k(users, items, 7, torch_als.rated(rated) if exclude else None, chunk_bytes=4 * 30 * 3)  # 3 a chunk
    scores = (users @ items.T).numpy()
    if exclude:
        scores[u, i] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    assert np.array_equal(np.sort(best.items.numpy(), axis=1), np.sort(expected, axis=1))
    assert not exclude or not any(set(best.items[n].tolist()) & set(i[u == n].tolist()) for n in range(40))


@settings(max_examples=60, deadline=None)
@given(n_users=st.integers(1, 30), n_items=st.integers(1, 25), density=st.floats(0, 1), k=st.integers(1, 30),
       chunk=st.integers(1, 50), seed=st.integers(0, 2**16), exclude=st.booleans())
def test_most_popular_is_the_top_k_of_the_popularity_scores(n_users: int, n_items: int, density: float, k: int,
                                                              chunk: int, seed: int, exclude: bool) -> None:
    """The baseline's lists without the users x items scores: the same items and scores as `top_k` on the
    popularity as a rank-1 product, whether a user rated nothing, some or every item (a list cut short
    ends in -inf), in chunks of any size."""
    u, i, r = random_ratings(n_users, n_items, density, seed)
    rated = None
    if exclude:
        side = torch_als.make_side(torch.from_numpy(u), torch.from_numpy(i), Ratings(torch.from_numpy(r)), n_users,
                                   n_items)
        rated = torch_als.rated(side)
    popularity = torch.from_numpy(ranking.popularity_scores(i, n_items))
    expected = top_k(torch.ones(n_users, 1, dtype=torch.float64), popularity[:, None], k, rated)
    got = most_popular(popularity, n_users, k, rated, chunk=chunk)
    found = torch.isfinite(expected.scores)
    assert torch.equal(torch.isfinite(got.scores), found)
    assert torch.equal(got.scores[found], expected.scores[found])
    assert torch.equal(got.items[found], expected.items[found])


def test_solving_in_chunks_gives_the_same_factors() -> None:
    u, i, r = random_ratings(50, 40, 0.3, 6)
    side = torch_als.make_side(torch.from_numpy(u), torch.from_numpy(i), Ratings(torch.from_numpy(r)), 50, 40)
    fixed = torch.randn(40, 6, generator=torch.Generator().manual_seed(3))
    whole = torch_als.solve_side(side, fixed, torch_als.Solve(0.1))
    chunked = torch_als.solve_side(side, fixed, torch_als.Solve(0.1), chunk_bytes=4 * 6 * 6 * 7)  # 7 rows at a time
    torch.testing.assert_close(chunked, whole)


def test_singular_systems_are_a_clear_error_not_nan_factors() -> None:
    u, i, r = random_ratings(20, 15, 0.1, 8)  # few ratings per row, rank 12, no regularization
    tensors = (torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(r))
    with pytest.raises(ValueError, match=r"ALS diverged .* raise --reg"):
        torch_als.fit(*tensors, 20, 15, ALSParams(rank=12, iterations=3, reg=0.0))


@given(st.lists(st.integers(-20, 10), min_size=1, max_size=50), st.sampled_from([1.0, 0.5]))
def test_star_ratings_are_stored_as_one_byte_codes_that_give_them_back_exactly(steps: list[int], step: float) -> None:
    ratings = torch.tensor(steps, dtype=torch.float32) * step
    encoded = torch_als.encode(ratings)
    assert encoded.stored.dtype == torch.int8 and encoded.step in torch_als.CODE_STEPS
    assert torch.equal(encoded.values(), ratings) and torch.equal(encoded[1:3], ratings[1:3])


@pytest.mark.parametrize("values", [[1.0, 2.25], [0.5, 3.0, 200.0], [1.0, float("nan")], [0.1, 0.2]])
def test_ratings_that_no_code_gives_back_keep_their_float32_values(values: list[float]) -> None:
    ratings = torch.tensor(values)
    encoded = torch_als.encode(ratings)
    assert encoded.step is None and encoded.stored is ratings


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_a_model_fitted_on_codes_is_the_model_fitted_on_float_ratings(implicit: bool, solver: str) -> None:
    """Half-star ratings, signed for implicit (MLlib's reading of r <= 0), in column blocks: decoding gives the
    very floats, so the factors agree to float32 accuracy (the products' order is the same)."""
    u, i, _ = random_ratings(60, 50, 0.3, 9)
    r = np.random.default_rng(4).integers(-2 if implicit else 1, 11, len(u)).astype(np.float32) * 0.5
    params = ALSParams(rank=5, iterations=4, reg=0.1, implicit=implicit, alpha=2.0, solver=solver, seed=3)
    models = []
    for ratings in (torch_als.encode(torch.from_numpy(r)), Ratings(torch.from_numpy(r))):
        by_user = torch_als.make_side(torch.from_numpy(u), torch.from_numpy(i), ratings, 60, 50, blocks=3)
        models.append(torch_als.fit_sides(by_user, torch_als.item_side(by_user, 50, 5), params))
    assert models[0].users.dtype == torch.float32 and torch_als.encode(torch.from_numpy(r)).step == 0.5
    torch.testing.assert_close(models[0].users, models[1].users, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(models[0].items, models[1].items, rtol=1e-5, atol=1e-6)


def test_a_side_in_column_blocks_gives_the_same_errors_and_rated_items() -> None:
    """Both engines build their sides in `als.gram_blocks` column blocks: the training errors (read through
    `SideRows`, a chunk at a time) and the pattern top-k leaves out (`als.rated`) are the unblocked side's."""
    rng = np.random.default_rng(3)
    pairs = np.unique(rng.integers(0, [50, 400], size=(3000, 2)), axis=0).astype(np.int32)
    rows, cols = torch.from_numpy(pairs[:, 0].copy()), torch.from_numpy(pairs[:, 1].copy())
    ratings = Ratings(torch.from_numpy(rng.random(len(pairs)).astype(np.float32)))
    one = torch_als.make_side(rows, cols, ratings, 50, 400)
    four = torch_als.make_side(rows, cols, ratings, 50, 400, blocks=4)
    users, items = torch.randn(50, 5), torch.randn(400, 5)
    assert side_errors(users, items, four, False) == pytest.approx(side_errors(users, items, one, False), rel=1e-12)
    expected = torch.zeros(50, 400)
    expected[pairs[:, 0], pairs[:, 1]] = 1
    assert torch.equal(torch_als.rated(four).to_dense(), expected)
    assert torch.equal(torch_als.rated(one).to_dense(), expected)
