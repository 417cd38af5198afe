"""Both ways of running the recommender as a process: the CLI and the study's spark-submit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from recommender.result import parse_result_line

pytestmark = pytest.mark.spark


def run(cmd: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = os.environ | env_extra
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_cli_runs_ml100k(movielens_dir: Path, tmp_path: Path) -> None:
    proc = run(
        [sys.executable, "-m", "recommender", "run", "--data", "ml-100k", "--api", "df",
         "--rank", "10", "--reg", "0.1", "--holdout", "0.2", "--iterations", "10"],
        {"RECOMMENDER_DATA_DIR": str(movielens_dir), "RECOMMENDER_CACHE_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = parse_result_line(proc.stdout)
    assert result["impl"] == "python" and result["api"] == "df" and result["data"] == "ml-100k"
    assert result["params"]["iterations"] == 10 and result["runtime"]["spark"]["master"] == "local[2]"
    assert result["metrics"]["holdout_rmse"] <= 0.93
    assert "holdout RMSE" in proc.stdout  # the human summary


def test_spark_submit_entry_as_the_study_ran_it(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("".join(f"{u},{i},{(u + i) % 5 + 1}\n" for u in range(1, 30) for i in range(1, 20)))
    spark_submit = Path(sys.executable).parent / "spark-submit"
    proc = run(
        [str(spark_submit), "--master", "local[2]", "--conf", "spark.driver.host=127.0.0.1",
         "recommender/entry.py", str(ratings), "--api", "rdd", "--iterations", "5"],
        {"PYSPARK_PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = parse_result_line(proc.stdout)
    assert result["api"] == "rdd" and result["counts"]["ratings"] == 29 * 19
    assert result["params"]["rank"] == 8 and result["params"]["reg"] == 0.01  # the study's defaults


def test_cli_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n1,2,oops\n")
    proc = run([sys.executable, "-m", "recommender", "run", "--data", str(bad), "--api", "df"], {})
    assert proc.returncode == 2
    assert f"error: {bad}, line 2: rating 'oops' is not a finite number" in proc.stderr
    assert "Traceback" not in proc.stderr
