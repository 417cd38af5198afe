"""The one contract, checked on every implementation of the registry as a user starts it.

Every (implementation, API) runs through its real launch command on the same small file, with every
ALS parameter set away from its default. Each must print one result line that matches the schema
(`recommender/result.schema.json`), echo the parameters it was given, and count the same ratings;
MLlib from Python, Scala and Java agrees to 1e-9 per API (`tests/jvm/test_parity.py` gives the
measured spread); the PyTorch engines, which start from other random factors, land within 2% of
MLlib's DataFrame ALS on this small file (measured: 0.74% on training MSE; on ml-100k the gap is
0.15%, `tests/recommender/tensor/test_engines.py`), where a wrong regularization scaling moves the
holdout RMSE by over 5%. Every implementation with the recommend phase runs it (`--top-k`):
MLlib's lists give the same ranking metrics from every language, a PyTorch engine's within
RANKING_TOLERANCE, and the most-popular baseline is the same everywhere. A peer library (another objective:
tests/recommender/peers grounds its figures) runs with the objective it has and names itself and its
version; the engine that ranks its factors, torch, names itself too.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, replace
from typing import Any

import pytest

from recommender import capabilities, memory
from recommender.data.readers import write_study_csv
from recommender.data.synthetic import SyntheticSpec, generate
from recommender.engine import Job
from recommender.launch import registry
from recommender.launch.registry import Implementation, Launcher, Need
from recommender.launch.submit import command, job_arguments, submit_env
from recommender.params import ALSParams
from recommender.result import parse_result_line
from tests.engines import SUBMIT

pytestmark = [pytest.mark.spark, pytest.mark.parity]
PARAMS = ALSParams(rank=6, iterations=12, reg=0.05, seed=11, blocks=2, holdout=0.25)
IMPLICIT_PARAMS = replace(PARAMS, implicit=True, alpha=3.0)  # for an implementation without explicit feedback
CASES = [(impl.name, api) for impl in registry.IMPLEMENTATIONS for api in impl.apis]
MLLIB_TOLERANCE = 1e-9
ENGINE_TOLERANCE = 0.02
TOP_K = 5  # the recommend phase, for every implementation that has one
CLIP = (1.0, 5.0)  # the synthetic ratings' scale: holdout predictions clipped to it for RMSE/MAE
RANKING_TOLERANCE = 0.02  # a PyTorch engine's ranking metrics from its own factors: absolute, against MLlib's


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> str:
    data = generate(SyntheticSpec(users=400, items=250, ratings=20_000, rank=4, seed=5))
    path = tmp_path_factory.mktemp("contract") / "ratings.csv"
    write_study_csv(data.frame, path)
    return str(path)


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str], dict[str, Any]]:
    """Each case's parsed result line, filled as the cases first ask for them."""
    return {}


def params_for(impl: Implementation) -> ALSParams:
    return PARAMS if "explicit" in impl.objectives else IMPLICIT_PARAMS


def result_of(impl_name: str, api: str, ratings: str, cache: dict[tuple[str, str], dict[str, Any]],
              request: pytest.FixtureRequest) -> dict[str, Any]:
    if (impl_name, api) not in cache:
        impl = registry.get(impl_name)
        reason = capabilities.missing(impl)
        if reason:
            pytest.skip(reason)
        if impl.launcher is Launcher.JVM:
            request.getfixturevalue("jar")
        job = Job(api, ratings, "contract", params_for(impl), top_k=TOP_K if impl.recommends else 0, clip=CLIP)
        cmd = command(impl, job_arguments(job), SUBMIT)
        proc = subprocess.run(cmd, env=submit_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        cache[(impl_name, api)] = parse_result_line(proc.stdout)  # validates against the schema
    return cache[(impl_name, api)]


@pytest.mark.parametrize("impl, api", CASES, ids=[f"{i}-{a}" for i, a in CASES])
def test_every_implementation_keeps_the_contract(impl: str, api: str, ratings: str, results: dict,
                                                 request: pytest.FixtureRequest) -> None:
    implementation = registry.get(impl)
    result = result_of(impl, api, ratings, results, request)
    reference = result_of(registry.DEFAULT, "df", ratings, results, request)  # MLlib's DataFrame ALS
    assert (result["impl"], result["api"], result["data"]) == (impl, api, "contract")
    assert result["params"] == asdict(params_for(implementation)) | ({} if implementation.uses_spark else {"blocks": 1})
    assert result["counts"] == reference["counts"]
    assert (result["runtime"]["spark"] is not None) == implementation.uses_spark
    assert result["metrics"]["clip"] == (None if params_for(implementation).implicit else list(CLIP))  # preferences
    assert (result["runtime"]["torch"] is not None) == (Need.TORCH in implementation.needs)
    library = result["runtime"]["library"]
    assert (library is not None) == implementation.peer
    if implementation.peer:
        assert library["name"] == impl and library["version"] and library["threads"] >= 1
    if sys.platform == "linux":  # every line carries its process's peak RSS where /proc tells it
        assert result["resources"][memory.PEAK_RSS] > 0
    recommends = {"recommend"} if implementation.recommends else set()
    assert set(result["phases"]) == {"load", "fit", "predict", "evaluate", "total"} | recommends
    if implementation.recommends:  # the same lists' sizes; the popularity baseline is the same lists
        assert result["recommended"] == reference["recommended"] == {
            "k": TOP_K, "users": reference["counts"]["users"], "exclude_rated": True, "relevance": None}
        assert result["metrics"]["baseline"] == pytest.approx(reference["metrics"]["baseline"], abs=MLLIB_TOLERANCE)
    if implementation.own_gpu_solver:  # a PyTorch engine: the same objective, its own start
        for key in ("train_mse", "holdout_rmse"):
            assert result["metrics"][key] == pytest.approx(reference["metrics"][key], rel=ENGINE_TOLERANCE), key
        if implementation.recommends:
            ranked, expected = result["metrics"]["ranking"], reference["metrics"]["ranking"]
            assert ranked["users"] == expected["users"]
            for key in ("precision", "recall", "ndcg", "map"):
                assert ranked[key] == pytest.approx(expected[key], abs=RANKING_TOLERANCE), key
    elif not implementation.peer:  # MLlib, from any language: the same solver, the same lists
        same_api = result_of(registry.DEFAULT, api, ratings, results, request)
        for key in ("train_mse", "holdout_rmse", "holdout_mae"):
            assert result["metrics"][key] == pytest.approx(same_api["metrics"][key], abs=MLLIB_TOLERANCE), key
        assert result["metrics"]["ranking"] == pytest.approx(same_api["metrics"]["ranking"], abs=MLLIB_TOLERANCE)
