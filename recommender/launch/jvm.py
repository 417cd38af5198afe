"""Building the Scala and Java recommenders' jar with scala/build.sh (launch.submit runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from recommender.launch.submit import JAR as JAR_PATH

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scala" / "build.sh"
JAR = ROOT / JAR_PATH


def build_jar() -> Path:
    """Build (or reuse, when no source changed) the jar for this Spark's Scala version."""
    env = os.environ | {"PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(BUILD)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"scala/build.sh failed:\n{proc.stdout}{proc.stderr}")
    return JAR
