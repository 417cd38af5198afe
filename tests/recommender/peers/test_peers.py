"""The peer libraries in the shared phases: on u1 each ranks as the suite's torch engine does with the same
settings, LensKit's explicit RMSE is torch's within a few thousandths, and LensKit's scores read through our
factors equal its own scorer's; the fair settings do what recommender/peers/fair.py says.

Measured (u1, the implicit defaults: rank 64, alpha 5, lambda 1, 15 iterations, top 10): NDCG@10 torch 0.5348,
implicit 0.5316, LensKit 0.5322, most popular 0.3254. Explicit at rank 10, lambda 0.1: holdout RMSE torch 0.933,
LensKit 0.943.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from recommender.data.sources import Prepared, prepare
from recommender.engine import Job
from recommender.params import ALSParams
from recommender.result import RunResult
from tests.engines import run_engine

torch = pytest.importorskip("torch", reason="the peers' evaluation needs torch: pip install -r requirements-torch.txt")
from recommender.peers import fair  # noqa: E402
from recommender.tensor.phases import Training  # noqa: E402

pytestmark = pytest.mark.torch
IMPLICIT = ALSParams.of({"implicit": True, "iterations": 15})
EXPLICIT = ALSParams(rank=10, reg=0.1, iterations=15)


@pytest.fixture(scope="module")
def u1(movielens_dir: Path) -> Prepared:
    return prepare("ml-100k:u1")


def ranked(impl: str, u1: Prepared, params: ALSParams, **options: object) -> RunResult:
    return run_engine(impl, u1.input_for(True), params=params, data="ml-100k:u1", top_k=10, threads=2,
                      test=u1.test_for(True), **options)


def ndcg(result: RunResult) -> float:
    assert result.metrics.ranking is not None
    return result.metrics.ranking.ndcg


@pytest.fixture(scope="module")
def torch_implicit(u1: Prepared) -> RunResult:
    return ranked("torch", u1, IMPLICIT)


@pytest.mark.parametrize(("impl", "solver"), [
    pytest.param("implicit", "cg", marks=pytest.mark.implicit),
    pytest.param("implicit", "cholesky", marks=pytest.mark.implicit),
    pytest.param("lenskit", "cholesky", marks=pytest.mark.lenskit),
])
def test_a_peer_ranks_u1_as_torch_does(u1: Prepared, torch_implicit: RunResult, impl: str, solver: str) -> None:
    peer = ranked(impl, u1, dataclasses.replace(IMPLICIT, solver=solver))
    assert peer.runtime.library is not None and peer.runtime.library.name == impl
    assert peer.runtime.library.threads == 2 and peer.runtime.parallelism == 2
    assert peer.counts == torch_implicit.counts and peer.metrics.baseline == torch_implicit.metrics.baseline
    assert ndcg(peer) == pytest.approx(ndcg(torch_implicit), abs=0.01)
    assert torch_implicit.metrics.baseline is not None and ndcg(peer) > 1.5 * torch_implicit.metrics.baseline.ndcg


@pytest.mark.lenskit
def test_lenskits_biased_mf_predicts_ratings_as_torch_does(u1: Prepared) -> None:
    lenskit, ours = ranked("lenskit", u1, EXPLICIT), ranked("torch", u1, EXPLICIT)
    assert lenskit.metrics.holdout_rmse is not None and ours.metrics.holdout_rmse is not None
    assert lenskit.metrics.holdout_rmse == pytest.approx(ours.metrics.holdout_rmse, abs=0.02)
    assert lenskit.metrics.holdout_rmse < 1.0  # the biases alone score about 0.96 here


@pytest.mark.lenskit
def test_lenskits_scores_through_our_factors_are_its_own() -> None:
    """The mean and biases folded into two factor columns (`lenskit_als._factors`) give LensKit's own scores."""
    import pandas as pd
    from lenskit.data import ItemList, from_interactions_df
    from lenskit.training import TrainingOptions

    from recommender.peers import lenskit_als

    rng = np.random.default_rng(3)
    users, items = np.nonzero(rng.random((40, 30)) < 0.3)
    frame = pd.DataFrame({"user_id": users, "item_id": items, "rating": rng.integers(1, 6, len(users))})
    data = from_interactions_df(frame, users=np.arange(40), items=np.arange(30))
    job = Job("none", "unused", "test", ALSParams(rank=4, reg=0.1, iterations=5))
    scorer = lenskit_als._scorer(job, len(frame), 40, 30)
    scorer.train(data, TrainingOptions(rng=1))
    user_factors, item_factors = lenskit_als._factors(scorer, implicit=False)
    for user in (0, 17, 39):
        own = scorer(user, ItemList(item_ids=np.arange(30))).scores()  # a known user: its training embedding
        assert np.allclose(item_factors @ user_factors[user], own, atol=1e-4)


@pytest.mark.lenskit
def test_lenskit_implicit_refuses_ratings_that_are_no_strengths() -> None:
    from recommender.peers import lenskit_als

    training = Training(np.array([0, 1], np.int32), np.array([0, 0], np.int32), np.array([4.0, -1.0], np.float32),
                        2, 1)
    job = Job("none", "unused", "test", IMPLICIT)
    with pytest.raises(ValueError, match=r"positive strengths .* down to -1.0; use a positives:R:NAME view"):
        lenskit_als.fit(job, training, torch.device("cpu"))


@pytest.mark.implicit
def test_an_explicit_run_of_implicit_is_refused_with_exit_2(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("1,1,5\n2,1,3\n")
    proc = subprocess.run([sys.executable, "-m", "recommender", "run", "--impl", "implicit", "--data", str(ratings)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the implicit implementation fits implicit feedback only, not explicit (--implicit)" in proc.stderr


def test_signed_confidence_is_mllibs_confidence_and_preference() -> None:
    ratings = np.array([4.0, -2.0, 0.0], np.float32)
    assert fair.signed_confidence(ratings, 5.0).tolist() == [21.0, -11.0, -1.0]  # c = 1 + 5|r|; p = 0 as -c


def test_the_unscaled_lambda_has_mllibs_total_penalty_on_equal_rows() -> None:
    params = ALSParams(reg=0.5)
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 7, 50), rng.integers(0, 11, 50)
    scaled = params.reg * (np.bincount(users, minlength=7).sum() + np.bincount(items, minlength=11).sum())
    assert fair.unscaled_reg(params, 50, 7, 11) * (7 + 11) == pytest.approx(scaled)


def test_by_user_reads_a_csr_matrix_without_regrouping_it() -> None:
    training = Training(np.array([1, 0, 1], np.int32), np.array([2, 1, 0], np.int32),
                        np.array([3.0, 4.0, 5.0], np.float32), 2, 3)
    side = fair.by_user(fair.user_items(training), torch.device("cpu"))
    assert side.matrix().to_dense().tolist() == [[0, 4, 0], [5, 0, 3]] and side.ratings.step == 1.0
    assert side.counts.tolist() == [1, 2] and side.blocks == 1
