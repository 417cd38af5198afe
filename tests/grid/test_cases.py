"""The benchmark grid: every case of the chosen grid (`--grid`, default smoke) as its own spark-submit.

    pytest -m grid --grid local --benchmark-json results/local.json
"""

from __future__ import annotations

import math

import pytest

from experiments import runner
from experiments.grid import Case
from experiments.pytest_plugin import GridSession
from recommender import capabilities
from recommender.data.sources import prepare
from recommender.launch import registry
from recommender.launch.registry import Launcher
from recommender.params import ALSParams

pytestmark = [pytest.mark.grid, pytest.mark.spark]


def test_case(benchmark, impl: str, api: str, device: str, cores: int, data: str, swept: dict,
              grid_session: GridSession, grid_target: runner.Target,
              request: pytest.FixtureRequest) -> None:
    case = Case(data, device, impl, api, cores, swept=tuple(swept.items()))
    profile = grid_session.catalogue.devices[device]
    implementation = registry.get(impl)
    reason = capabilities.missing(implementation, gpu=profile.uses_gpu, rapids=grid_target.rapids_jar)
    if reason:
        pytest.skip(reason)
    if implementation.launcher is Launcher.JVM:
        request.getfixturevalue("jar")
    prepared = prepare(case.data)
    launch = runner.launch_for(case, grid_target, profile)
    cmd = runner.case_command(case, prepared.input_for(implementation.reads_parquet), grid_session.grid.params,
                              launch, grid_session.grid.top_k, grid_session.grid.include_rated)
    runs: list[runner.CaseRun] = []

    benchmark.group = f"{case.data} {case.device}"
    benchmark.pedantic(lambda: runs.append(runner.run(case, cmd, grid_target)),
                       rounds=grid_session.rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(runner.extra_info(case, runs, cmd, launch))

    result = runs[0].result
    assert (result["impl"], result["api"], result["data"]) == (case.impl, case.api, case.data)
    ran = {key: result["params"].get(key, getattr(ALSParams(), key)) for key in swept}  # absent: the default
    assert ran == swept, f"the run's parameters {ran} are not the case's"
    # local[N] runs N tasks at once; a cluster's default parallelism is max(its cores, 2);
    # single-node torch runs one block on `cores` threads of the CPU.
    spark, torch = result["runtime"]["spark"], result["runtime"]["torch"]
    if spark is None:
        assert result["params"]["blocks"] == 1
        assert torch["device"] != "cpu" or torch["threads"] == cores
    elif spark["master"].startswith("local"):
        assert spark["default_parallelism"] == cores
    elif spark["master"].startswith("spark://"):
        assert spark["default_parallelism"] == max(cores, 2)
    if prepared.ratings is not None:
        assert result["counts"]["ratings"] == prepared.ratings
    mse = [r.result["metrics"]["train_mse"] for r in runs]
    assert all(math.isfinite(m) and m > 0 for m in mse)
    # ALS is deterministic for a fixed seed and block count: rounds must agree.
    assert max(mse) - min(mse) <= 1e-9 * max(mse), f"rounds disagree: {mse}"
