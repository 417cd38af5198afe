"""The Scala and Java recommenders: the build, its version guard, and parity with Python.

Measured on this machine (2 cores, Spark 4.1.1), explicit and implicit feedback alike: runs of
one implementation repeat exactly; Scala `df` equals Python `df` bit for bit; Scala and Java `rdd`
differ from Python `rdd` by at most 2.3e-15 (explicit, ml-100k; implicit: 2.8e-16), the same JVM
solver evaluated in Python doubles. The tolerance, 1e-9, is for one API across languages; `rdd` and
`df` differ by up to 3e-9 explicit and 1.5e-10 implicit (float predictions in the DataFrame), so
they are held to 1e-6 apart (tests/recommender/spark/test_recommender.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from recommender import memory
from recommender.data.readers import write_study_csv
from recommender.data.sources import prepare
from recommender.data.synthetic import SyntheticSpec, generate
from recommender.engine import Job
from recommender.launch import jvm, registry
from recommender.launch.submit import JAR, ROOT, command, job_arguments, submit_env
from recommender.params import ALSParams
from recommender.result import parse_result_line
from tests.engines import SUBMIT, plausible_peak, run_engine
from tests.jvm.cases import SHARED_RDD_PATH, cases_in_ci

pytestmark = [pytest.mark.scala, pytest.mark.spark]
TOLERANCE = 1e-9
PARAMS = ALSParams(rank=10, iterations=10, reg=0.1, seed=42, holdout=0.2)


def submit(impl: str, path: str, api: str, params: ALSParams, root: Path = ROOT,
           clip: tuple[float, float] | None = None) -> subprocess.CompletedProcess[str]:
    job = Job(api, path, "test", params, clip=clip)
    cmd = command(registry.get(impl), job_arguments(job), SUBMIT, root=root)
    return subprocess.run(cmd, env=submit_env(), capture_output=True, text=True, timeout=600)


def jvm_result(impl: str, path: str, api: str, params: ALSParams = PARAMS,
               clip: tuple[float, float] | None = None) -> dict:
    proc = submit(impl, path, api, params, clip=clip)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return parse_result_line(proc.stdout)


def test_jar_records_the_versions_it_was_built_for(jar: Path) -> None:
    import pyspark

    with zipfile.ZipFile(jar) as zf:
        props = zf.read("als-build.properties").decode()
        names = set(zf.namelist())
    assert f"spark.version={pyspark.__version__}" in props
    assert re.search(r"scala.version=2\.1[23]\.\d+", props)
    assert {"als/RecommenderScala.class", "als/RecommenderJava.class", "als/VersionGuard.class"} <= names


def test_warm_build_does_nothing(jar: Path) -> None:
    proc = subprocess.run(["bash", str(jvm.BUILD)], env=submit_env() | {"PYTHON": sys.executable},
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "is up to date" in proc.stdout, proc.stdout + proc.stderr


def test_jar_for_another_scala_version_is_refused_clearly(jar: Path, tmp_path: Path) -> None:
    other = tmp_path / JAR
    other.parent.mkdir(parents=True)
    with zipfile.ZipFile(jar) as src, zipfile.ZipFile(other, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "als-build.properties":
                data = re.sub(rb"scala.version=\S+", b"scala.version=2.12.18", data)
            dst.writestr(item, data)
    proc = submit("scala", "x.csv", "df", PARAMS, root=tmp_path)
    assert proc.returncode != 0
    assert "this jar was built for Scala 2.12.18" in proc.stderr
    assert "rebuild it with scala/build.sh" in proc.stderr


def test_bad_line_gives_the_same_message_as_python(jar: Path, tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("1,2,3\n4,5,6\n7,8,NaN\n")
    for impl, api in (("scala", "df"), ("scala", "rdd"), ("java", "rdd")):
        proc = submit(impl, str(path), api, PARAMS)
        assert proc.returncode == 2, (impl, api, proc.stderr[-2000:])
        assert f"error: {path}, line 3: rating 'NaN' is not a finite number" in proc.stderr


def compare(python: dict, other: dict) -> None:
    assert other["counts"] == python["counts"]
    for key in ("train_mse", "holdout_rmse", "holdout_mae"):
        assert other["metrics"][key] == pytest.approx(python["metrics"][key], abs=TOLERANCE), key
    assert other["params"] == python["params"]


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory) -> str:
    data = generate(SyntheticSpec(users=500, items=300, ratings=30_000, rank=4, seed=3))
    path = tmp_path_factory.mktemp("parity") / "ratings.csv"
    write_study_csv(data.frame, path)
    return str(path)


@pytest.mark.parametrize("impl, api", [("scala", "df"), ("java", "rdd")])
def test_a_jvm_result_line_carries_its_jvms_peak_rss(jar: Path, synthetic_csv: str, impl: str, api: str) -> None:
    """Report.scala's `resources`: the peak RSS of the JVM that wrote the line (Memory.scala), under
    the key recommender/memory.py names; read from /proc, which Linux has."""
    if sys.platform != "linux":
        pytest.skip("the JVM reads its peak from /proc, which only Linux has")
    resources = jvm_result(impl, synthetic_csv, api)["resources"]
    assert set(resources) == {memory.PEAK_RSS} and plausible_peak(resources[memory.PEAK_RSS])


@pytest.mark.parity
@pytest.mark.parametrize("impl, api", cases_in_ci(SHARED_RDD_PATH, ("java", "rdd")))  # ml-100k: all three
def test_parity_on_synthetic(spark, jar: Path, synthetic_csv: str, impl: str, api: str) -> None:
    python = run_engine("python", synthetic_csv, api, PARAMS, data="test", spark=spark)
    compare(parse_result_line(python.to_line()), jvm_result(impl, synthetic_csv, api))


@pytest.mark.parity
@pytest.mark.parametrize("impl, api", cases_in_ci(SHARED_RDD_PATH))  # the contract: all three, explicit
def test_parity_on_ml100k(spark, jar: Path, movielens_dir: Path, tmp_path_factory, impl: str, api: str) -> None:
    csv = prepare("ml-100k", movielens_dir, tmp_path_factory.mktemp("cache")).csv
    python = run_engine("python", csv, api, PARAMS, data="test", spark=spark)
    other = jvm_result(impl, csv, api)
    compare(parse_result_line(python.to_line()), other)
    assert other["impl"] == impl and other["metrics"]["holdout_rmse"] <= 0.93


# Implicit feedback (MLlib's implicitPrefs): small and short, alpha away from both APIs' defaults
# (ml 1.0, mllib 0.01), so a side that dropped it would disagree.
IMPLICIT = ALSParams(rank=5, iterations=5, reg=0.1, seed=42, holdout=0.2, implicit=True, alpha=2.0)


@pytest.mark.parity
@pytest.mark.parametrize("impl, api", cases_in_ci())
def test_implicit_parity_on_ml100k(spark, jar: Path, movielens_dir: Path, tmp_path_factory, impl: str,
                                   api: str) -> None:
    """The JVM side is given ml-100k's scale, as `run` passes it: a preference has none, so it must
    ignore it (clipped to [1, 5], predictions of p = 1 would err only above 1) and report null."""
    csv = prepare("ml-100k", movielens_dir, tmp_path_factory.mktemp("cache")).csv
    python = run_engine("python", csv, api, IMPLICIT, data="test", spark=spark)
    other = jvm_result(impl, csv, api, IMPLICIT, clip=(1.0, 5.0))
    compare(parse_result_line(python.to_line()), other)
    assert other["params"]["implicit"] is True and other["params"]["alpha"] == 2.0
    assert other["metrics"]["clip"] is None
    assert other["metrics"]["train_mse"] < 0.5  # against preferences, not ratings (about 9 against those)
