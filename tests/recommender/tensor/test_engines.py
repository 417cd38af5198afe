"""The PyTorch engines against MLlib: same objective, so the same fit within a measured tolerance.

The engines start from other random factors than MLlib (another RNG), so they reach a slightly
different optimum. Measured on ml-100k (rank 10, 15 iterations, λ 0.1, 80/20 split): training MSE
0.5494 against MLlib's 0.5502, holdout RMSE 0.9219 against 0.9233, both 0.15% apart. The
tolerance, 0.5%, is three times that; a wrong regularization scaling (λ instead of λ·n) moves
the holdout RMSE by over 5%, so the bound still tells a different objective apart.
torch-spark runs the same solver from the same start, so it matches single-node torch to float32
rounding (the sums are taken in another order).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from recommender.data.sources import prepare
from recommender.params import ALSParams
from tests.engines import run_engine

torch = pytest.importorskip("torch", reason="the PyTorch engines need torch: pip install -r requirements-torch.txt")

pytestmark = pytest.mark.spark
PARAMS = ALSParams(rank=10, iterations=15, reg=0.1, seed=42, holdout=0.2)
TOLERANCE = 0.005  # relative, on training MSE and holdout RMSE


@pytest.fixture(scope="module")
def ml100k(movielens_dir: Path) -> str:
    return prepare("ml-100k").csv


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> str:
    return prepare("synthetic:ml-100k:7", cache_dir=tmp_path_factory.mktemp("cache")).csv


@pytest.mark.parametrize("data", ["ml100k", "synthetic"])
def test_torch_fits_mllibs_objective(spark, data: str, request: pytest.FixtureRequest) -> None:
    csv = request.getfixturevalue(data)
    mllib = run_engine("python", csv, "df", PARAMS, spark=spark)
    ours = run_engine("torch", csv, params=PARAMS)
    assert dataclasses.astuple(ours.counts) == dataclasses.astuple(mllib.counts)
    assert ours.metrics.train_mse == pytest.approx(mllib.metrics.train_mse, rel=TOLERANCE)
    assert ours.metrics.holdout_rmse == pytest.approx(mllib.metrics.holdout_rmse, rel=TOLERANCE)
    assert ours.metrics.holdout_mae == pytest.approx(mllib.metrics.holdout_mae, rel=2 * TOLERANCE)


def test_plain_lambda_would_be_caught(ml100k: str) -> None:
    """The tolerance discriminates: λ without the per-row count is another model."""
    scaled = run_engine("torch", ml100k, params=PARAMS)
    plain = run_engine("torch", ml100k, params=dataclasses.replace(PARAMS, reg=PARAMS.reg / 50))  # ~λ/mean count
    assert abs(plain.metrics.holdout_rmse / scaled.metrics.holdout_rmse - 1) > 10 * TOLERANCE


def test_torch_spark_is_the_same_solver_distributed(spark, ml100k: str) -> None:
    single = run_engine("torch", ml100k, params=PARAMS)
    distributed = run_engine("torch-spark", ml100k, "df", PARAMS, spark=spark)
    assert distributed.impl == "torch-spark" and distributed.params["blocks"] == 2
    assert dataclasses.astuple(distributed.counts) == dataclasses.astuple(single.counts)
    assert distributed.metrics.train_mse == pytest.approx(single.metrics.train_mse, rel=1e-5)
    assert distributed.metrics.holdout_rmse == pytest.approx(single.metrics.holdout_rmse, rel=1e-5)
