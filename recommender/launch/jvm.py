"""Running the Scala and Java recommenders: build the jar with scala/build.sh, then spark-submit it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from recommender.launch.submit import Launch, als_arguments, spark_submit, submit_env
from recommender.params import ALSParams

__all__ = ["JAR", "MAIN_CLASS", "build_jar", "submit_command", "submit_env"]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scala" / "build.sh"
JAR = ROOT / "scala" / "target" / "als-recommender.jar"
MAIN_CLASS = {"scala": "als.RecommenderScala", "java": "als.RecommenderJava"}


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
    launch: Launch | None = None,
) -> list[str]:
    """The spark-submit command line for the `impl` recommender, with the shared arguments.

    `launch`, when given, replaces `master`, `confs` and `driver_memory`.
    """
    if impl not in MAIN_CLASS:
        raise ValueError(f"unknown JVM implementation {impl!r}; choose from {sorted(MAIN_CLASS)}")
    launch = launch or Launch(master=master, driver_memory=driver_memory, confs=confs)
    app = ["--class", MAIN_CLASS[impl], str(jar)]
    return spark_submit(launch, app, als_arguments(input_path, api, params, data_name, skip_bad_rows))
