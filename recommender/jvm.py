"""Running the Scala and Java recommenders: build the jar with scala/build.sh, then spark-submit it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from recommender.params import ALSParams

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "scala" / "build.sh"
JAR = ROOT / "scala" / "target" / "als-recommender.jar"
MAIN_CLASS = {"scala": "als.RecommenderScala", "java": "als.RecommenderJava"}


def spark_bin() -> Path:
    """The folder holding the spark-submit of the Spark that runs this process."""
    import pyspark

    home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
    return Path(home) / "bin"


def build_jar() -> Path:
    """Build (or reuse, when no source changed) the jar for this Spark's Scala version."""
    env = os.environ | {"PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(BUILD)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"scala/build.sh failed:\n{proc.stdout}{proc.stderr}")
    return JAR


def submit_command(
    impl: str,
    input_path: str,
    api: str,
    params: ALSParams,
    master: str | None,
    confs: dict[str, str],
    data_name: str | None = None,
    driver_memory: str | None = None,
    skip_bad_rows: bool = False,
    jar: Path = JAR,
) -> list[str]:
    """The spark-submit command line for the `impl` recommender, with the shared arguments."""
    if impl not in MAIN_CLASS:
        raise ValueError(f"unknown JVM implementation {impl!r}; choose from {sorted(MAIN_CLASS)}")
    cmd = [str(spark_bin() / "spark-submit"), "--class", MAIN_CLASS[impl]]
    if master:
        cmd += ["--master", master]
    if driver_memory:
        cmd += ["--driver-memory", driver_memory]
    if master and master.startswith("local"):
        confs = {"spark.driver.host": "127.0.0.1", "spark.ui.enabled": "false"} | confs
    for key, value in confs.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(jar), input_path, "--api", api, "--rank", str(params.rank)]
    cmd += ["--iterations", str(params.iterations), "--reg", repr(params.reg)]
    cmd += ["--seed", str(params.seed), "--holdout", repr(params.holdout)]
    if params.blocks is not None:
        cmd += ["--blocks", str(params.blocks)]
    if data_name:
        cmd += ["--data", data_name]
    if skip_bad_rows:
        cmd += ["--skip-bad-rows"]
    return cmd


def submit_env() -> dict[str, str]:
    """spark-submit's launcher scripts locate Spark through Python: give them this one."""
    return os.environ | {"PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
