"""The Scala and Java recommenders on a predefined split (`--test`, ml-100k:u1) with the recommend
phase: the same counts, RMSE, MAE and ranking metrics as Python's, and a bad test file refused the
way a bad ratings file is. Rated items are left out in two passes (spark/ranking.py): on data whose
heavy users need the second pass (the JVM programs say so on stderr), the same metrics as Python's."""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender.data.sources import prepare
from recommender.engine import Job
from recommender.launch import registry
from recommender.launch.submit import command, job_arguments, submit_env
from recommender.params import ALSParams
from recommender.result import parse_result_line
from tests.engines import SUBMIT, run_engine
from tests.jvm.cases import SHARED_RDD_PATH, cases_in_ci

pytestmark = [pytest.mark.scala, pytest.mark.spark, pytest.mark.parity]
TOLERANCE = 1e-9  # tests/jvm/test_parity.py: MLlib from any language on the same file
PARAMS = ALSParams(rank=10, iterations=10, reg=0.1, seed=42)
TOP_K = 10
CLIP = (1.0, 5.0)
SECOND_PASS = re.compile(r"recommend: k = \d+, asked k \+ (\d+) of every user, then k \+ (\d+) of (\d+) users")


def submit(impl: str, path: str, api: str, test: str, data: str = "ml-100k:u1") -> subprocess.CompletedProcess[str]:
    job = Job(api, path, data, PARAMS, top_k=TOP_K, test=test, clip=CLIP)
    cmd = command(registry.get(impl), job_arguments(job), SUBMIT)
    return subprocess.run(cmd, env=submit_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def u1(movielens_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    prepared = prepare("ml-100k:u1", movielens_dir, tmp_path_factory.mktemp("cache"))
    assert prepared.test_csv is not None
    return prepared.csv, prepared.test_csv


@pytest.fixture(scope="module")
def python_u1(spark: Any, u1: tuple[str, str]) -> dict[str, dict[str, Any]]:
    """Python's result line per API on u1."""
    train, test = u1
    return {api: parse_result_line(run_engine("python", train, api, PARAMS, "ml-100k:u1", spark=spark, top_k=TOP_K,
                                              test=test, clip=CLIP).to_line()) for api in ("rdd", "df")}


@pytest.mark.parametrize("impl, api", cases_in_ci(SHARED_RDD_PATH))
def test_jvm_on_u1_gives_pythons_figures(jar: Path, u1: tuple[str, str], python_u1: dict, impl: str,
                                         api: str) -> None:
    proc = submit(impl, u1[0], api, u1[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours, python = parse_result_line(proc.stdout), python_u1[api]
    c = ours["counts"]
    assert (c["ratings"], c["train"], c["holdout"], c["users"], c["items"]) == (100_000, 80_000, 20_000, 943, 1682)
    assert ours["counts"] == python["counts"]
    for key in ("train_mse", "holdout_rmse", "holdout_mae"):
        assert ours["metrics"][key] == pytest.approx(python["metrics"][key], abs=TOLERANCE), key
    assert ours["recommended"] == python["recommended"] == {"k": TOP_K, "users": 943, "exclude_rated": True,
                                                             "relevance": None}
    for key in ("ranking", "baseline"):
        assert ours["metrics"][key]["users"] == python["metrics"][key]["users"] == 459  # u1.test's users
        assert ours["metrics"][key] == pytest.approx(python["metrics"][key], abs=TOLERANCE), key


@pytest.fixture(scope="module")
def heavy_users(tmp_path_factory: pytest.TempPathFactory) -> str:
    """195 users rate 6 of 100 items, 5 rate 95: ranking.margin picks a small m (6), and the heavy
    users' first-pass lists (k + 6 items, nearly all rated) come out short, so a second pass runs."""
    rng = np.random.default_rng(7)
    lines = [f"{u},{i},{rng.integers(1, 6)}" for u in range(200)
             for i in rng.choice(100, 95 if u < 5 else 6, replace=False)]
    path = tmp_path_factory.mktemp("heavy") / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("impl, api", cases_in_ci(SHARED_RDD_PATH))
def test_the_second_pass_gives_pythons_lists(spark: Any, jar: Path, heavy_users: str, impl: str, api: str) -> None:
    """Python's two passes give the one-pass lists (tests/recommender/test_ranking.py); the JVM's
    second pass runs here and gives the same ranking metrics (the lists are not in the result line)."""
    params = ALSParams(rank=4, iterations=5, reg=0.1, seed=3, holdout=0.2)
    job = Job(api, heavy_users, "heavy", params, top_k=5)
    proc = subprocess.run(command(registry.get(impl), job_arguments(job), SUBMIT),
                          env=submit_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    passes = SECOND_PASS.search(proc.stderr)
    assert passes is not None, proc.stderr[-2000:]
    margin, asked, users = map(int, passes.groups())
    assert margin < asked and 0 < users <= 5, passes.group(0)
    python = run_engine("python", heavy_users, api, params, "heavy", spark=spark, top_k=5)
    ranking, baseline = python.metrics.ranking, python.metrics.baseline
    assert ranking is not None and baseline is not None and ranking.users > 100
    ours = parse_result_line(proc.stdout)["metrics"]
    assert ours["ranking"] == pytest.approx(asdict(ranking), abs=TOLERANCE)
    assert ours["baseline"] == pytest.approx(asdict(baseline), abs=TOLERANCE)


@pytest.mark.parametrize("impl, api", cases_in_ci(SHARED_RDD_PATH))
def test_a_bad_test_file_is_named_with_its_line(jar: Path, tmp_path: Path, impl: str, api: str) -> None:
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("".join(f"{u},{i},{(u + i) % 5 + 1}\n" for u in range(1, 9) for i in range(1, 9)))
    test.write_text("1,9,4\n2,9,x\n")
    proc = submit(impl, str(train), api, str(test), data="bad")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: {test}, line 2: rating 'x' is not a finite number" in proc.stderr
    assert "\tat als." not in proc.stderr  # no stack trace
    missing = submit(impl, str(train), api, str(tmp_path / "none.csv"), data="bad")
    assert missing.returncode == 2 and f"error: {tmp_path / 'none.csv'}: file does not exist" in missing.stderr
