"""torch-spark on a real cluster: a standalone master with two workers (one executor each, so the two
barrier tasks run in two executors on their own), the same model as `local[2]`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from experiments.standalone import ClusterShape, standalone_cluster
from recommender.data.sources import prepare
from recommender.launch.submit import submit_env
from recommender.params import ALSParams
from recommender.result import RunResult, parse_result_line
from tests.engines import run_engine

pytest.importorskip("torch", reason="the PyTorch engines need torch: pip install -r requirements-torch.txt")
pytestmark = [pytest.mark.spark, pytest.mark.torch]
ROOT = Path(__file__).resolve().parents[3]
PARAMS = ALSParams(rank=10, iterations=10, reg=0.1, seed=42, holdout=0.2, blocks=2)


def test_two_workers_fit_the_local_model(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv = prepare("synthetic:ml-100k:7", cache_dir=tmp_path).csv
    local: RunResult = run_engine("torch-spark", csv, params=PARAMS, spark=spark)
    env = submit_env() | {"PYTHONPATH": str(ROOT), "SPARK_LOCAL_IP": "127.0.0.1"}
    with standalone_cluster(ClusterShape(workers=2, cores_per_worker=1, memory_per_worker="2g")) as cluster:
        command = [sys.executable, "-m", "recommender", "run", "--data", csv, "--impl", "torch-spark",
                   "--master", cluster.master_url, "--blocks", "2", "--driver-memory", "1g",
                   "--rank", str(PARAMS.rank), "--iterations", str(PARAMS.iterations), "--reg", str(PARAMS.reg),
                   "--holdout", str(PARAMS.holdout), "--conf", "spark.driver.host=127.0.0.1",
                   "--conf", "spark.executor.memory=1g", "--conf", f"spark.executorEnv.PYTHONPATH={ROOT}"]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = parse_result_line(done.stdout)
    assert result["runtime"]["spark"]["master"] == cluster.master_url
    assert result["resources"]["tasks"] == 2 and result["counts"]["train"] == local.counts.train
    assert result["metrics"]["train_mse"] == pytest.approx(local.metrics.train_mse, rel=1e-5)
    assert result["metrics"]["holdout_rmse"] == pytest.approx(local.metrics.holdout_rmse, rel=1e-5)
