"""The EMR steps' spark-submit commands are real: the same builder, pointed at this checkout and a
local standalone master instead of the master node and YARN, runs them and reads their results."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from emr import sizing, steps
from experiments import grid
from experiments.grid import Case
from experiments.standalone import standalone_cluster
from recommender.data.columns import ITEM, USER
from recommender.data.fractal_output import CSV_FILE, PARQUET_DIR
from recommender.data.sources import prepare
from recommender.launch import jvm
from recommender.launch.submit import spark_bin, submit_env
from recommender.result import parse_result_line

pytestmark = [pytest.mark.emr, pytest.mark.spark, pytest.mark.slow]
CASES = [Case("ml-100k", "cpu", "python", "rdd", 2), Case("ml-100k", "cpu", "java", "rdd", 2)]


def app_part(command: list[str]) -> list[str]:
    """Everything from the application (entry.py, or --class and the jar) on, paths cut to names."""
    start = next(i for i, a in enumerate(command) if a.endswith("entry.py") or a == "--class")
    return [Path(a).name if "/" in a else a for a in command[start:]]


def confs(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, a in enumerate(command) if a == "--conf")


def test_step_commands_run_on_a_standalone_cluster(movielens_dir: Path, tmp_path: Path) -> None:
    csv = prepare("ml-100k").csv
    catalogue = grid.load()
    cpu = catalogue.devices["cpu"]
    jvm.build_jar()
    with standalone_cluster() as cluster:
        layout = steps.Layout(root=str(ROOT), spark_submit=str(spark_bin() / "spark-submit"),
                              master=cluster.master_url)
        for case in CASES:
            on_emr = steps.case_command(case, "s3://b/p/data/ml-100k/ratings.csv", catalogue.params,
                                        steps.case_launch(case, cpu))
            here = steps.case_command(case, csv, catalogue.params, steps.case_launch(case, cpu, layout), layout)
            assert app_part(here) == app_part(on_emr)
            loopback = {"spark.driver.host", "spark.ui.enabled"}  # added for a 127.0.0.1 master
            assert {k: v for k, v in confs(here).items() if k not in loopback} == confs(on_emr)

            proc = subprocess.run(here, env=submit_env(), capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            result = parse_result_line(proc.stdout)
            assert (result["impl"], result["api"]) == (case.impl, case.api)
            assert result["runtime"]["spark"]["master"] == cluster.master_url
            assert result["counts"]["ratings"] == 100_000
            assert "ALS_PHASE fit begin" in proc.stderr  # the markers the GPU explain is split by

        # The generation step: the expansion of an uploaded base, written by the executors, equals
        # the one this process makes from the data set's name.
        node = sizing.Node("standalone", 1, 4.0)  # 2g executors, within the 3g workers
        base = f"file://{prepare('ml-100k').parquet}"
        out = tmp_path / "expansion"
        step = steps.generate_step("fractal:ml-100k:2x3", base, f"file://{out}", node, 2, layout)
        proc = subprocess.run(step["HadoopJarStep"]["Args"], env=submit_env(), capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        on_cluster = pd.read_parquet(out / PARQUET_DIR).sort_values([USER, ITEM], ignore_index=True)
        here = pd.read_parquet(prepare("fractal:ml-100k:2x3").parquet).sort_values([USER, ITEM], ignore_index=True)
        assert len(on_cluster) > 100_000 and on_cluster.equals(here)
        assert len((out / CSV_FILE).read_text().splitlines()) == len(here)  # on S3: the parts, `expansion_csv`
