"""The harness end to end: the grid on a standalone cluster, its JSON, and the reports built from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from experiments import compare, grid, runner
from experiments.grid import Case
from recommender.data.sources import prepare

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_grid_on_a_standalone_cluster_feeds_both_compare_tools(movielens_dir: Path, tmp_path: Path) -> None:
    """`--spark-master standalone` starts a master and 2 workers; every case runs there, and the
    cluster's MSE equals the local[2] one (same blocks, same seed)."""
    out = tmp_path / "cluster.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/grid/test_cases.py", "-m", "grid", "-q",
         "--grid", "smoke", "--spark-master", "standalone", "--impls", "python,java", "--apis", "rdd",
         "--cores", "2", "--rounds", "2", "--label", "standalone-test", f"--benchmark-json={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["machine_info"]["als"]["label"] == "standalone-test"
    cases = {b["extra_info"]["case"]["impl"]: b for b in data["benchmarks"]}
    assert sorted(cases) == ["java", "python"]
    for bench in cases.values():
        assert bench["stats"]["rounds"] == 2 and len(bench["extra_info"]["rounds"]) == 2
        assert bench["extra_info"]["master"].startswith("spark://127.0.0.1:")
        rounds = bench["extra_info"]["rounds"]
        assert all(r["runtime"]["spark"]["app_id"].startswith("app-") for r in rounds)  # not local-

    # The same case in local mode gives the same model.
    catalogue = grid.load()
    case = Case("ml-100k", "cpu", "python", "rdd", 2)
    target = runner.Target()
    launch = runner.launch_for(case, target, catalogue.devices["cpu"])
    local = runner.run(case, runner.case_command(case, prepare("ml-100k").csv, catalogue.params, launch), target)
    cluster_mse = cases["python"]["extra_info"]["result"]["metrics"]["train_mse"]
    assert local.result["metrics"]["train_mse"] == pytest.approx(cluster_mse, rel=1e-9)

    tool = Path(sys.executable).parent / "pytest-benchmark"  # installed beside this Python
    checked = subprocess.run([str(tool), "compare", str(out)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "java-rdd-cpu-2c-ml-100k" in checked.stdout

    assert compare.main([str(out), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "### python · cpu · standalone-test" in report and "Java over Python" in report
    assert f"{cluster_mse:.4f}" in report
