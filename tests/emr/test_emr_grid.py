"""The grid on a real EMR cluster, timed by the cluster:

    pytest -m "emr and gpu" --aws-bucket B --benchmark-json out.json       # the GPU grid
    pytest -m "emr and not gpu" --aws-bucket B --benchmark-json out.json   # the CPU grid

Without --aws-bucket this is skipped (it would need a real cluster); the moto tests in
test_launcher.py cover the launcher, and test_steps_on_standalone.py the step commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emr import run
from emr.launcher import Aws, Storage, new_prefix
from emr.pytest_plugin import EMR_RESULTS, pytest_benchmark_update_json, record_emr_results
from emr.spec import ClusterOptions

pytestmark = pytest.mark.emr


@pytest.mark.slow
@pytest.mark.parametrize("gpu", [pytest.param(False, id="cpu"), pytest.param(True, id="gpu", marks=pytest.mark.gpu)])
def test_grid_on_emr(gpu: bool, aws: Aws, bucket: str, aws_endpoint: str | None,
                     pytestconfig: pytest.Config, tmp_path: Path) -> None:
    if aws_endpoint is not None:
        pytest.skip("needs a real EMR cluster: give --aws-bucket and AWS credentials")
    storage = Storage(bucket, new_prefix())
    options = ClusterOptions(gpu=gpu, region=aws.region, core_type=pytestconfig.getoption("--emr-core-type"),
                             core_count=pytestconfig.getoption("--emr-core-count"),
                             subnet_id=pytestconfig.getoption("--emr-subnet"),
                             log_uri=storage.uri("logs") + "/")
    plan = run.build_plan(pytestconfig.getoption("--emr-grid"), gpu, max_cores=run.worker_cores(options))
    out = run.run_grid(aws, options, storage, plan, tmp_path / "emr.json",
                       keep=pytestconfig.getoption("--emr-keep"))
    document = json.loads(out.read_text())
    assert len(document["benchmarks"]) == len(plan.cases)
    assert all(b["extra_info"]["master"] == "yarn" for b in document["benchmarks"])
    record_emr_results(pytestconfig, document)


def test_emr_results_join_the_benchmark_json(pytestconfig: pytest.Config) -> None:
    """What the hook adds to --benchmark-json: the cluster's cases and its machine description."""
    document = {"benchmarks": [{"name": "test_case[scala-rdd-gpu-4c-ml-20m]"}],
                "machine_info": {"als": {"label": "EMR emr-7.13.0 2xg4dn.2xlarge"}}}
    saved = pytestconfig.stash.get(EMR_RESULTS, None)
    pytestconfig.stash[EMR_RESULTS] = []
    try:
        record_emr_results(pytestconfig, document)
        output = {"benchmarks": [{"name": "local"}], "machine_info": {"node": "here"}}
        pytest_benchmark_update_json(pytestconfig, [], output)
    finally:
        if saved is None:
            del pytestconfig.stash[EMR_RESULTS]
        else:
            pytestconfig.stash[EMR_RESULTS] = saved
    assert [b["name"] for b in output["benchmarks"]] == ["local", "test_case[scala-rdd-gpu-4c-ml-20m]"]
    assert output["machine_info"]["als"]["label"].startswith("EMR ")
