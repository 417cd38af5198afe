"""Shared fixtures: capability checks, one local SparkSession per test session, the data mirror."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.data.sources import default_data_dir

ROOT = Path(__file__).resolve().parent

pytest_plugins = ["experiments.pytest_plugin", "emr.pytest_plugin"]


def java_major() -> int | None:
    """The major version of the `java` on PATH, or None without one."""
    if shutil.which("java") is None:
        return None
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    try:
        version = out.split('"')[1]
    except IndexError:
        return None
    major = version.split(".")[0]
    return int(major) if major.isdigit() else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip Spark tests, with the reason, only where no suitable JVM exists."""
    major = java_major()
    if major is not None and major >= 17:
        return
    reason = "no java on PATH" if major is None else f"Spark 4 needs Java 17+, found {major}"
    for item in items:
        if "spark" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A local[2] SparkSession shared by every Spark test, stopped at the end."""
    from recommender.spark import session as spark_session

    config = spark_session.SessionConfig(
        master="local[2]",
        app_name="als-tests",
        driver_memory="2g",
        checkpoint_dir=str(tmp_path_factory.mktemp("checkpoints")),
        confs={
            "spark.local.dir": str(tmp_path_factory.mktemp("spark-local")),
            "spark.sql.shuffle.partitions": "4",
        },
    )
    session = spark_session.start(config)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    """The MovieLens mirror (RECOMMENDER_DATA_DIR) holding ml-100k."""
    data_dir = default_data_dir()
    if data_dir is None or not (data_dir / "ml-100k" / "u.data").is_file():
        pytest.skip("no MovieLens mirror with ml-100k: set RECOMMENDER_DATA_DIR")
    return data_dir
