"""The PyTorch engines' implicit model against MLlib's `implicitPrefs` on ml-100k: the same objective
reached, and the same ranking quality on the u1 split (torch, and torch-spark on 1, 2 and 4 tasks); CG
against Cholesky at ranks 10 and 64.

The engines start from other random factors than MLlib (another RNG), so they land on another
optimum of the same non-convex objective: the objective's value is held to 1% and NDCG@10 to 0.01,
the issue's bounds. The objective is `recommender.objective.objective_numpy` on each model's factors.
Measured (rank 10, α 1, λ 0.01, 15 iterations, all of ml-100k): MLlib 137,329, torch 136,916 with
Cholesky and 136,905 with CG, 0.30% and 0.31% lower.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT
from recommender.data.columns import ITEM, RATING, USER
from recommender.data.readers import read_any
from recommender.data.sources import Prepared, prepare
from recommender.launch import registry
from recommender.objective import objective_numpy
from recommender.params import ALSParams
from recommender.result import RunResult, parse_result_line
from tests.engines import run_engine

torch = pytest.importorskip("torch", reason="the PyTorch engines need torch: pip install -r requirements-torch.txt")
from recommender.ids import compact  # noqa: E402
from recommender.tensor import als as torch_als  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.torch]
PARAMS = ALSParams(rank=10, iterations=15, reg=0.01, alpha=1.0, seed=42, implicit=True)


@pytest.fixture(scope="module")
def u1(movielens_dir: Path) -> Prepared:
    return prepare("ml-100k:u1")


def mllib_objective(spark, csv: str, params: ALSParams) -> float:  # type: ignore[no-untyped-def]
    """MLlib's implicit ALS on all of `csv`, its factors' objective."""
    from pyspark.ml.recommendation import ALS

    frame = read_any(csv).frame
    ratings = spark.createDataFrame(frame[[USER, ITEM, RATING]])
    model = ALS(rank=params.rank, maxIter=params.iterations, regParam=params.reg, implicitPrefs=True,
                alpha=params.alpha, seed=params.seed, userCol=USER, itemCol=ITEM, ratingCol=RATING).fit(ratings)

    def factors(table) -> dict[int, np.ndarray]:  # type: ignore[no-untyped-def]
        return {row["id"]: np.asarray(row["features"], np.float64) for row in table.collect()}

    users, items = factors(model.userFactors), factors(model.itemFactors)
    user_ids, item_ids = sorted(users), sorted(items)
    u = np.searchsorted(user_ids, frame[USER].to_numpy())
    i = np.searchsorted(item_ids, frame[ITEM].to_numpy())
    return objective_numpy(np.stack([users[k] for k in user_ids]), np.stack([items[k] for k in item_ids]), u, i,
                           frame[RATING].to_numpy(np.float64), params.reg, True, params.alpha)


def torch_objective(csv: str, params: ALSParams) -> float:
    frame = read_any(csv).frame
    user_ids, u = compact(frame[USER].to_numpy(np.int64))
    item_ids, i = compact(frame[ITEM].to_numpy(np.int64))
    ratings = frame[RATING].to_numpy(np.float32)
    model = torch_als.fit(torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(ratings),
                          len(user_ids), len(item_ids), params)
    return objective_numpy(model.users.double().numpy(), model.items.double().numpy(), u, i,
                           ratings.astype(np.float64), params.reg, True, params.alpha)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_torch_reaches_mllibs_implicit_objective(spark, movielens_dir: Path, solver: str) -> None:  # type: ignore[no-untyped-def]
    csv = prepare("ml-100k").csv
    mllib = mllib_objective(spark, csv, PARAMS)
    ours = torch_objective(csv, dataclasses.replace(PARAMS, solver=solver))
    assert ours == pytest.approx(mllib, rel=0.01)


def ranked(impl: str, u1: Prepared, params: ALSParams, spark=None, **options: Any) -> RunResult:  # type: ignore[no-untyped-def]
    parquet = registry.get(impl).reads_parquet
    return run_engine(impl, u1.input_for(parquet), params=params, data="ml-100k:u1", spark=spark, top_k=10,
                      test=u1.test_for(parquet), **options)


def ndcg(result: RunResult) -> float:
    assert result.metrics.ranking is not None
    return result.metrics.ranking.ndcg


@pytest.fixture(scope="module")
def mllib(spark, u1: Prepared) -> RunResult:  # type: ignore[no-untyped-def]
    return ranked("python", u1, PARAMS, spark, api="df")


def test_the_engines_rank_u1_as_mllib_does(spark, u1: Prepared, mllib: RunResult) -> None:  # type: ignore[no-untyped-def]
    base = mllib.metrics.baseline
    assert base is not None and ndcg(mllib) > 1.4 * base.ndcg  # implicit ALS beats most popular
    for blocks in (1, 2):
        distributed = ranked("torch-spark", u1, dataclasses.replace(PARAMS, blocks=blocks), spark)
        assert ndcg(distributed) == pytest.approx(ndcg(mllib), abs=0.01), blocks
    assert ndcg(ranked("torch", u1, PARAMS)) == pytest.approx(ndcg(mllib), abs=0.01)


def test_four_tasks_rank_u1_as_mllib_does(u1: Prepared, mllib: RunResult) -> None:
    """Four barrier tasks need four slots: the CLI with its own local[4] Spark, as a user runs it."""
    command = [sys.executable, "-m", "recommender", "run", "--data", "ml-100k:u1", "--impl", "torch-spark",
               "--master", "local[4]", "--blocks", "4", "--driver-memory", "1g", "--top-k", "10", "--implicit",
               "--rank", str(PARAMS.rank), "--iterations", str(PARAMS.iterations), "--reg", str(PARAMS.reg),
               "--alpha", str(PARAMS.alpha), "--seed", str(PARAMS.seed)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = parse_result_line(done.stdout)
    assert result["params"]["blocks"] == 4 and result["resources"]["tasks"] == 4
    assert result["metrics"]["ranking"]["ndcg"] == pytest.approx(ndcg(mllib), abs=0.01)


@pytest.mark.parametrize("rank", [10, 64])
def test_cg_ranks_as_cholesky_does(u1: Prepared, rank: int) -> None:
    exact = ranked("torch", u1, dataclasses.replace(PARAMS, rank=rank))
    cg = ranked("torch", u1, dataclasses.replace(PARAMS, rank=rank, solver="cg"))
    assert exact.metrics.ranking is not None and cg.metrics.ranking is not None
    for name in ("precision", "recall", "ndcg", "map"):
        assert getattr(cg.metrics.ranking, name) == pytest.approx(getattr(exact.metrics.ranking, name), abs=0.01)
