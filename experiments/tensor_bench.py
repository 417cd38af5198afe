"""The PyTorch engine's benchmark, CUDA against the machine's CPU cores: one case per data set,
device and rank, each a whole run of the engine (`recommender.engine`), so its phases, result line
and peak device memory are those of `python -m recommender run --impl torch`.

Not collected by `make test`: `python -m experiments.gpu` runs it (see there), or by hand
`pytest experiments/tensor_bench.py --tensor-devices cpu --tensor-data synthetic:ml-1m`.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import pytest

from recommender import engine
from recommender.data.sources import prepare
from recommender.engine import Job
from recommender.launch import registry
from recommender.params import ALSParams
from recommender.result import RunResult
from recommender.timing import PhaseTimer

torch = pytest.importorskip("torch", reason="the PyTorch engine needs torch: pip install -r requirements-torch.txt")

pytestmark = pytest.mark.torch
TORCH = registry.get("torch")
CASE_ARGS = ("data", "device", "rank")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not set(CASE_ARGS) <= set(metafunc.fixturenames):
        return
    option = metafunc.config.getoption
    params = []
    for data in option("--tensor-data"):
        for device in option("--tensor-devices"):
            ranks = option("--tensor-ranks") if device == "cuda" else option("--tensor-cpu-ranks")
            params += [pytest.param(data, device, rank, id=f"{data}-{device}-r{rank}") for rank in ranks]
    metafunc.parametrize(CASE_ARGS, params)


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(0) if device == "cuda" else (platform.processor() or platform.machine())


def test_tensor_case(benchmark: Any, data: str, device: str, rank: int, pytestconfig: pytest.Config) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device on this machine")
    option = pytestconfig.getoption
    prepared = prepare(data)
    threads = os.cpu_count() or 1
    params = ALSParams(rank=rank, iterations=option("--tensor-iterations"), reg=0.01, seed=42)
    job = Job("none", prepared.input_for(TORCH.reads_parquet), prepared.name, params, device=device, threads=threads,
              top_k=option("--tensor-top-k"))
    runs: list[RunResult] = []
    benchmark.group = f"{data} rank {rank}"
    benchmark.pedantic(lambda: runs.append(engine.execute(TORCH, job, PhaseTimer())),
                       rounds=option("--tensor-rounds"), iterations=1, warmup_rounds=1 if device == "cuda" else 0)
    last = runs[-1]
    result = last.as_dict()
    benchmark.extra_info.update({
        "case": {"impl": TORCH.name, "api": job.api, "device": "gpu" if device == "cuda" else "cpu",
                 "cores": threads, "data": prepared.name, "rank": rank},
        "result": result,
        "rounds": [{"phases": run.phases, "metrics": run.as_dict()["metrics"], "runtime": run.as_dict()["runtime"]}
                   for run in runs],
        "seconds_per_iteration": last.phases["fit"] / params.iterations,
        "recommend_users_per_s": last.counts.users / last.phases["recommend"] if last.phases.get("recommend") else None,
        "device_name": device_name(device),
        "master": f"torch:{device}",
    })
    assert last.counts.ratings == prepared.ratings
    assert all(run.metrics.train_mse == pytest.approx(last.metrics.train_mse, rel=1e-5) for run in runs)
    if prepared.oracle_mse is not None and rank >= 10:  # enough rank for the data's structure
        assert last.metrics.train_mse <= 1.1 * prepared.oracle_mse
