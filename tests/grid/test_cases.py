"""The benchmark grid: every case of the chosen grid (`--grid`, default smoke) as its own spark-submit.

    pytest -m grid --grid local --benchmark-json results/local.json
"""

from __future__ import annotations

import math

import pytest

from experiments import environment, runner
from experiments.grid import TORCH_IMPLS, Case
from experiments.pytest_plugin import GridSession
from recommender.data.sources import prepare
from recommender.launch import jvm

pytestmark = [pytest.mark.grid, pytest.mark.spark]


@pytest.fixture(scope="session")
def jar() -> None:
    jvm.build_jar()


def test_case(benchmark, impl: str, api: str, device: str, cores: int, data: str,
              grid_session: GridSession, grid_target: runner.Target,
              request: pytest.FixtureRequest) -> None:
    case = Case(data, device, impl, api, cores)
    profile = grid_session.catalogue.devices[device]
    if impl in TORCH_IMPLS:
        torch = pytest.importorskip("torch", reason="PyTorch engines need torch: pip install -r requirements-torch.txt")
        if profile.uses_gpu and not torch.cuda.is_available():
            pytest.skip("GPU case: torch sees no CUDA device on this machine")
    elif profile.uses_gpu and not grid_target.rapids_jar:
        pytest.skip("GPU case: no spark-rapids jar given (--rapids-jar or SPARK_RAPIDS_JAR)")
    elif profile.uses_gpu and not environment.gpus():
        pytest.skip("GPU case: nvidia-smi sees no GPU on this machine")
    if case.impl != "python":
        request.getfixturevalue("jar")
    prepared = prepare(case.data)
    launch = runner.launch_for(case, grid_target, profile)
    cmd = runner.command(case, prepared.csv, grid_session.grid.params, launch)
    runs: list[runner.CaseRun] = []

    benchmark.group = f"{case.data} {case.device}"
    benchmark.pedantic(lambda: runs.append(runner.run(case, cmd, grid_target)),
                       rounds=grid_session.rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(runner.extra_info(case, runs, cmd, launch))

    result = runs[0].result
    assert (result["impl"], result["api"], result["data"]) == (case.impl, case.api, case.data)
    # local[N] runs N tasks at once; a cluster's default parallelism is max(its cores, 2);
    # single-node torch runs `cores` threads on the CPU.
    master = result["spark"]["master"]
    if master.startswith("local") or master == "torch:cpu":
        assert result["spark"]["default_parallelism"] == cores
    elif master.startswith("spark://"):
        assert result["spark"]["default_parallelism"] == max(cores, 2)
    if prepared.ratings is not None:
        assert result["counts"]["ratings"] == prepared.ratings
    mse = [r.result["metrics"]["train_mse"] for r in runs]
    assert all(math.isfinite(m) and m > 0 for m in mse)
    # ALS is deterministic for a fixed seed and block count: rounds must agree.
    assert max(mse) - min(mse) <= 1e-9 * max(mse), f"rounds disagree: {mse}"
