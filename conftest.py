"""Shared fixtures: capability skips, one local SparkSession per test session, the jar, the data mirror."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recommender import capabilities
from recommender.data.sources import default_data_dir

ROOT = Path(__file__).resolve().parent

pytest_plugins = ["experiments.pytest_plugin", "emr.pytest_plugin"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with the reason, each test whose markers need something this machine lacks."""
    for item in items:
        for marker, check in capabilities.MARKER_CHECKS.items():
            reason = check() if marker in item.keywords else None
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
                break


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local[2] SparkSession shared by every Spark test, stopped at the end."""
    from recommender.spark.config import SessionConfig
    from recommender.spark.session import spark_session

    config = SessionConfig(
        master="local[2]",
        app_name="als-tests",
        driver_memory="2g",
        checkpoint_dir=str(tmp_path_factory.mktemp("checkpoints")),
        confs={
            "spark.local.dir": str(tmp_path_factory.mktemp("spark-local")),
            "spark.sql.shuffle.partitions": "4",
        },
    )
    with spark_session(config) as session:
        yield session


@pytest.fixture(scope="session")
def jar() -> Path:
    """The Scala/Java jar, built once per session (tests that use it carry the `scala` marker)."""
    from recommender.launch import jvm

    reason = capabilities.no_jdk()
    if reason:
        pytest.skip(reason)
    return jvm.build_jar()


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    """The MovieLens mirror (RECOMMENDER_DATA_DIR) holding ml-100k."""
    data_dir = default_data_dir()
    if data_dir is None or not (data_dir / "ml-100k" / "u.data").is_file():
        pytest.skip("no MovieLens mirror with ml-100k: set RECOMMENDER_DATA_DIR")
    return data_dir
