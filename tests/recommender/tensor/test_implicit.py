"""The PyTorch solver's implicit objective (MLlib's implicitPrefs) and its conjugate-gradient solver, against
dense numpy references of the normal equations and of the objective, and the convergence ALS promises."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from recommender.data.readers import write_study_csv
from recommender.data.synthetic import SyntheticSpec, generate
from recommender.objective import objective_numpy
from recommender.params import SOLVERS, ALSParams
from tests.engines import run_engine

if TYPE_CHECKING:
    from torch import Tensor

torch = pytest.importorskip("torch", reason="the PyTorch engine needs torch: pip install -r requirements-torch.txt")

from recommender.tensor import als as torch_als  # noqa: E402
from recommender.tensor.topk import top_k  # noqa: E402

pytestmark = [pytest.mark.unit, pytest.mark.torch]
N_USERS, N_ITEMS = 30, 20
EMPTY, NON_POSITIVE = 3, 5  # a user without ratings, and one whose ratings are all <= 0
OBJECTIVES = [pytest.param(False, id="explicit"), pytest.param(True, id="implicit")]


def mixed_ratings(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratings in [-2, 5] with some exact zeros, user EMPTY without any and user NON_POSITIVE with none > 0."""
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((N_USERS, N_ITEMS)) < 0.4)
    ratings = rng.uniform(-2, 5, len(users))
    ratings[::7] = 0.0
    ratings[users == NON_POSITIVE] = -np.abs(ratings[users == NON_POSITIVE])
    kept = users != EMPTY
    return users[kept].astype(np.int32), items[kept].astype(np.int32), ratings[kept].astype(np.float32)


def side_of(u: np.ndarray, i: np.ndarray, r: np.ndarray, n_rows: int, n_cols: int, blocks: int = 1) -> torch_als.Side:
    return torch_als.make_side(torch.from_numpy(u), torch.from_numpy(i), torch_als.encode(torch.from_numpy(r)), n_rows,
                               n_cols, blocks)


def reference_solve(u: np.ndarray, i: np.ndarray, r: np.ndarray, fixed: np.ndarray, n_rows: int,
                    how: torch_als.Solve) -> np.ndarray:
    """Each row's normal equations written out densely in float64 (the module docstring's), solved directly;
    0 for a row whose count is 0 (its right-hand side is 0)."""
    y = fixed.astype(np.float64)
    solved = np.zeros((n_rows, y.shape[1]))
    for row in range(n_rows):
        cols, ratings = i[u == row], r[u == row].astype(np.float64)
        if how.implicit:
            a = y.T @ y + (y[cols].T * (how.alpha * np.abs(ratings))) @ y[cols]
            b, count = y[cols].T @ np.where(ratings > 0, 1 + how.alpha * ratings, 0), (ratings > 0).sum()
        else:
            a, b, count = y[cols].T @ y[cols], y[cols].T @ ratings, len(cols)
        if count:
            solved[row] = np.linalg.solve(a + how.reg * count * np.eye(len(a)), b)
    return solved


def fixed_factors(n: int, rank: int, seed: int) -> Tensor:
    return torch.randn(n, rank, generator=torch.Generator().manual_seed(seed)) / rank**0.5


def relative_error(got: Tensor, expected: Tensor) -> float:
    return float((got.double() - expected.double()).norm() / expected.double().norm())


@pytest.mark.parametrize("implicit", OBJECTIVES)
@pytest.mark.parametrize("rank", [4, torch_als.PACKED_MAX_RANK + 4])  # the packed Cholesky, then LAPACK's
@pytest.mark.parametrize("blocks", [1, 3])
@pytest.mark.parametrize("positive", [pytest.param(False, id="mixed"), pytest.param(True, id="positive")])
def test_a_half_iteration_solves_the_dense_normal_equations(implicit: bool, rank: int, blocks: int,
                                                            positive: bool) -> None:
    """Mixed signs, and all ratings > 0 (where the implicit weights skip |r| and the mask)."""
    u, i, r = mixed_ratings(0)
    r = np.abs(r) + 0.5 if positive else r
    how = torch_als.Solve(0.3, implicit=implicit, alpha=2.0)
    fixed = fixed_factors(N_ITEMS, rank, 1)
    side = side_of(u, i, r, N_USERS, N_ITEMS, blocks)
    assert side.all_positive == positive
    solved = torch_als.solve_side(side, fixed, how)
    expected = reference_solve(u, i, r, fixed.numpy(), N_USERS, how)
    np.testing.assert_allclose(solved.double().numpy(), expected, rtol=2e-4, atol=2e-5)


def test_a_side_counts_its_positive_ratings_apart_only_where_some_are_not() -> None:
    u, i, r = mixed_ratings(1)
    mixed = side_of(u, i, r, N_USERS, N_ITEMS, blocks=3)
    assert mixed.positives is not mixed.counts
    assert torch.equal(mixed.positives, torch.from_numpy(np.bincount(u[r > 0], minlength=N_USERS)).float())
    assert torch.equal(mixed.counts, torch.from_numpy(np.bincount(u, minlength=N_USERS)).float())
    positive = side_of(u, i, np.abs(r) + 1, N_USERS, N_ITEMS)
    assert positive.positives is positive.counts  # one tensor where all are > 0


def test_an_outside_gram_is_the_one_solved_with() -> None:
    """The distributed engine passes the all-reduced Gram of every task's rows: the same systems."""
    u, i, r = mixed_ratings(2)
    how, fixed = torch_als.Solve(0.1, implicit=True), fixed_factors(N_ITEMS, 6, 3)
    summed = torch_als.gram_of(fixed[:8]) + torch_als.gram_of(fixed[8:])  # two tasks' rows
    side = side_of(u, i, r, N_USERS, N_ITEMS)
    for solver in SOLVERS:
        chosen = replace(how, solver=solver)
        torch.testing.assert_close(torch_als.solve_side(side, fixed, chosen, gram=summed),
                                   torch_als.solve_side(side, fixed, chosen))
    np.testing.assert_allclose(torch_als.gram_of(fixed).numpy(), fixed.double().numpy().T @ fixed.double().numpy(),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("implicit", OBJECTIVES)
@pytest.mark.parametrize("blocks", [1, 3])
@pytest.mark.parametrize("warm", [False, True])
def test_many_cg_steps_reach_the_cholesky_solution(implicit: bool, blocks: int, warm: bool) -> None:
    u, i, r = mixed_ratings(3)
    side, fixed = side_of(u, i, r, N_USERS, N_ITEMS, blocks), fixed_factors(N_ITEMS, 8, 4)
    how = torch_als.Solve(0.2, implicit=implicit, alpha=1.5)
    start = fixed_factors(N_USERS, 8, 5) if warm else None
    exact = torch_als.solve_side(side, fixed, how)
    iterative = torch_als.solve_side(side, fixed, replace(how, solver="cg", cg_steps=50), start=start)
    assert relative_error(iterative, exact) < 1e-4


@pytest.mark.parametrize("implicit", OBJECTIVES)
def test_products_in_small_parts_are_the_products_in_one_part_a_block(implicit: bool) -> None:
    """A part of 5 ratings at a time, or a column block at once: the same sums."""
    u, i, r = mixed_ratings(4)
    side, fixed = side_of(u, i, r, N_USERS, N_ITEMS, blocks=2), fixed_factors(N_ITEMS, 5, 6)
    x, how = fixed_factors(N_USERS, 5, 7), torch_als.Solve(0.1, implicit=implicit)
    large, small = torch_als._parts(side, 10**9), torch_als._parts(side, 5)
    assert len(large) == side.blocks and len(small) > 2 * side.blocks
    torch.testing.assert_close(torch_als._rated_products(small, fixed, x, how),
                               torch_als._rated_products(large, fixed, x, how))
    torch.testing.assert_close(torch_als._rhs(side, small, fixed, how), torch_als._rhs(side, large, fixed, how))


@pytest.mark.parametrize("implicit", OBJECTIVES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_rows_without_ratings_get_exactly_zero_factors(implicit: bool, solver: str) -> None:
    u, i, r = mixed_ratings(5)
    how = torch_als.Solve(0.1, implicit=implicit, solver=solver)
    solved = torch_als.solve_side(side_of(u, i, r, N_USERS, N_ITEMS), fixed_factors(N_ITEMS, 6, 8), how,
                                  start=torch.ones(N_USERS, 6))
    assert torch.isfinite(solved).all()
    assert torch.count_nonzero(solved[EMPTY]) == 0
    assert not implicit or torch.count_nonzero(solved[NON_POSITIVE]) == 0  # n+ = 0: its right-hand side is 0


def low_rank(seed: int, implicit: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy rank-3 ratings of 60 users and 40 items, half of the pairs rated (counts in [0, 6] for implicit)."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(40, 3))
    u, i = np.nonzero(rng.random((60, 40)) < 0.5)
    r = (x[u] * y[i]).sum(1) + rng.normal(scale=0.1, size=len(u))
    r = np.round(np.clip(r + 3, 0, 6)) if implicit else r
    return u.astype(np.int32), i.astype(np.int32), r.astype(np.float32)


def fitted_objective(u: np.ndarray, i: np.ndarray, r: np.ndarray, n_users: int, n_items: int,
                     params: ALSParams) -> float:
    model = torch_als.fit(torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(r), n_users, n_items, params)
    return torch_als.objective(model.users, model.items, side_of(u, i, r, n_users, n_items),
                               torch_als.Solve.of(params))


@pytest.mark.parametrize("implicit", OBJECTIVES)
def test_three_cg_steps_a_half_iteration_come_within_a_few_percent_of_cholesky(implicit: bool) -> None:
    """At rank 8 three steps solve no row's system exactly (rank 3 would: CG is exact in k steps)."""
    u, i, r = low_rank(6, implicit)
    params = ALSParams(rank=8, iterations=15, reg=0.05, seed=1, implicit=implicit, alpha=2.0)
    exact = fitted_objective(u, i, r, 60, 40, params)
    iterative = fitted_objective(u, i, r, 60, 40, replace(params, solver="cg", cg_steps=3))
    assert iterative < 1.03 * exact


@pytest.mark.parametrize("implicit", OBJECTIVES)
def test_every_cholesky_half_iteration_lowers_the_objective(implicit: bool) -> None:
    """Each half-iteration minimises the objective exactly over one side, so it can never rise."""
    u, i, r = mixed_ratings(7)
    by_user = side_of(u, i, r, N_USERS, N_ITEMS, blocks=2)
    by_item = side_of(i, u, r, N_ITEMS, N_USERS)
    how = torch_als.Solve(0.1, implicit=implicit, alpha=1.0)
    users, items = torch_als.initial_factors(N_USERS, 4, 0, torch.device("cpu")), torch.zeros(N_ITEMS, 4)
    values = []
    for _ in range(6):
        items = torch_als.solve_side(by_item, users, how)
        values.append(torch_als.objective(users, items, by_user, how))
        users = torch_als.solve_side(by_user, items, how)
        values.append(torch_als.objective(users, items, by_user, how))
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(values)), values
    assert values[-1] < 0.9 * values[0]


def dense_objective(x: np.ndarray, y: np.ndarray, u: np.ndarray, i: np.ndarray, r: np.ndarray, reg: float,
                    implicit: bool, alpha: float) -> float:
    """The objective by brute force over every (user, item) pair."""
    rated, ratings = np.zeros((len(x), len(y)), bool), np.zeros((len(x), len(y)))
    rated[u, i], ratings[u, i] = True, r
    error = ((ratings > 0) - x @ y.T) ** 2 * (1 + alpha * np.abs(ratings)) if implicit else (
        rated * (ratings - x @ y.T) ** 2)
    counted = rated & (ratings > 0) if implicit else rated
    return float(error.sum() + reg * (counted.sum(1) @ (x**2).sum(1) + counted.sum(0) @ (y**2).sum(1)))


@pytest.mark.parametrize("implicit", OBJECTIVES)
def test_the_objective_is_the_brute_force_sum_over_all_pairs(implicit: bool) -> None:
    u, i, r = mixed_ratings(8)
    x, y = fixed_factors(N_USERS, 5, 9), fixed_factors(N_ITEMS, 5, 10)
    how = torch_als.Solve(0.3, implicit=implicit, alpha=1.7)
    dense = dense_objective(x.double().numpy(), y.double().numpy(), u, i, r, how.reg, implicit, how.alpha)
    assert objective_numpy(x.numpy(), y.numpy(), u, i, r, how.reg, implicit, how.alpha) == pytest.approx(dense,
                                                                                                      rel=1e-12)
    ours = torch_als.objective(x, y, side_of(u, i, r, N_USERS, N_ITEMS, blocks=3), how)
    assert ours == pytest.approx(dense, rel=1e-12)


def test_the_solve_is_the_params_own() -> None:
    params = ALSParams(reg=0.2, implicit=True, alpha=4.0, solver="cg", cg_steps=5)
    assert torch_als.Solve.of(params) == torch_als.Solve(0.2, True, 4.0, "cg", 5)
    with pytest.raises(ValueError, match="solver 'lu'"):
        torch_als.Solve(0.1, solver="lu")


def test_implicit_top_k_beats_the_most_popular_items() -> None:
    """Four groups of users, each consuming its own ten of 40 items (plus noise): held-out items of a user's
    group rank high for the model, while popularity knows no groups."""
    rng = np.random.default_rng(11)
    group = np.arange(200) % 4
    likes = (np.arange(40)[None, :] // 10 == group[:, None]) & (rng.random((200, 40)) < 0.6)
    noise = rng.random((200, 40)) < 0.05
    u, i = np.nonzero(likes | noise)
    held = rng.random(len(u)) < 0.2
    tu, ti = u[~held].astype(np.int32), i[~held].astype(np.int32)
    params = ALSParams(rank=4, iterations=10, reg=0.1, implicit=True, alpha=10.0, solver="cg")
    model = torch_als.fit(torch.from_numpy(tu), torch.from_numpy(ti), torch.ones(len(tu)), 200, 40, params)
    rated = torch_als.rated(side_of(tu, ti, np.ones(len(tu), np.float32), 200, 40))
    best = top_k(model.users, model.items, 5, rated).items.numpy()
    popular = np.argsort(-np.bincount(ti, minlength=40), kind="stable")
    hits = {"model": 0, "popular": 0}
    for user, item in zip(u[held], i[held], strict=True):
        hits["model"] += item in best[user]
        unrated = [c for c in popular if c not in set(ti[tu == user])][:5]
        hits["popular"] += item in unrated
    assert hits["model"] > 2 * hits["popular"], hits


def test_the_single_engine_measures_implicit_errors_against_preferences(tmp_path: Path) -> None:
    """Every rating here is > 0, so every preference is 1: clipped to the 1-5 scale, every implicit prediction
    would be an exact hit; unclipped, the model's predictions (near 1) miss by a little."""
    ratings = tmp_path / "ratings.csv"
    write_study_csv(generate(SyntheticSpec(users=200, items=100, ratings=5_000, rank=4, seed=3)).frame, ratings)
    params = ALSParams(rank=4, iterations=5, reg=0.1, holdout=0.2, implicit=True)
    result = run_engine("torch", ratings, params=params, clip=(1.0, 5.0))
    train_mse, holdout_rmse = result.metrics.train_mse, result.metrics.holdout_rmse
    assert train_mse is not None and 0 < train_mse < 0.2
    assert holdout_rmse is not None and 0 < holdout_rmse < 1.0
