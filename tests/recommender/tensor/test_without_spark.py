"""The single-node engine and the GPU benchmark on a bare CUDA machine's software: PyTorch, numpy,
pandas, pyarrow, pytest, pytest-benchmark and tabulate, and none of pyspark, scipy, tqdm,
jsonschema, matplotlib or boto3. A `sitecustomize` makes those unimportable in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from recommender.data.readers import write_study_csv
from recommender.data.synthetic import SyntheticSpec, generate
from recommender.result import parse_result_line

pytestmark = pytest.mark.torch
ABSENT = ("pyspark", "py4j", "scipy", "tqdm", "jsonschema", "matplotlib", "boto3", "botocore", "moto")


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process (and its children) in which the absent packages cannot be imported."""
    folder = tmp_path_factory.mktemp("bare")
    (folder / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in ABSENT))
    cache = tmp_path_factory.mktemp("cache")
    return os.environ | {"PYTHONPATH": f"{folder}{os.pathsep}{ROOT}", "RECOMMENDER_CACHE_DIR": str(cache)}


def test_the_absent_packages_really_are_absent(bare_env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-c", "import pyspark"], env=bare_env, capture_output=True, text=True)
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


@pytest.mark.unit
def test_the_torch_engine_runs_without_pyspark(bare_env: dict[str, str], tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    write_study_csv(generate(SyntheticSpec(users=300, items=200, ratings=12_000, rank=4, seed=2)).frame, ratings)
    cmd = [sys.executable, str(ROOT / "recommender" / "entry.py"), str(ratings), "--impl", "torch",
           "--rank", "6", "--iterations", "5", "--holdout", "0.2", "--top-k", "5"]
    proc = subprocess.run(cmd, env=bare_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = parse_result_line(proc.stdout)  # here, where jsonschema is
    assert result["runtime"] == {"spark": None, "torch": result["runtime"]["torch"], "library": None}
    assert result["recommended"] == {"k": 5, "users": result["counts"]["users"], "exclude_rated": True,
                                     "relevance": None}
    assert result["metrics"]["ranking"]["k"] == result["metrics"]["baseline"]["k"] == 5  # numpy, no Spark


def test_the_gpu_command_without_cuda_says_so_in_one_line(bare_env: dict[str, str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the command would run")
    proc = subprocess.run([sys.executable, "-m", "experiments.gpu"], cwd=ROOT, env=bare_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: no CUDA here: ")
    assert proc.stdout == ""


def test_the_gpu_commands_cpu_side_writes_json_that_compare_reads(bare_env: dict[str, str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "experiments.gpu", "--devices", "cpu", "--data", "synthetic:ml-100k",
           "--cpu-ranks", "4,8", "--iterations", "3", "--top-k", "5", "--results", str(results), "--label", "bare"]
    proc = subprocess.run(cmd, cwd=ROOT, env=bare_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = results.glob("gpu-*.json")
    document = json.loads(path.read_text())
    cases = {(b["extra_info"]["case"]["device"], b["extra_info"]["case"]["rank"]) for b in document["benchmarks"]}
    assert cases == {("cpu", 4), ("cpu", 8)}
    assert "s/iteration" in proc.stdout  # the summary table

    from experiments import compare

    report = compare.write_report([path], tmp_path / "report")
    assert "torch" in report.read_text()
