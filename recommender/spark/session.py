"""Creating the SparkSession the same way for local mode and for a real cluster."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class SessionConfig:
    """Where Spark runs and how; `master` None leaves it to spark-submit."""

    master: str | None = "local[2]"
    app_name: str = "als-benchmark"
    driver_memory: str | None = "4g"
    checkpoint_dir: str | None = None  # None: a fresh folder under /tmp on the default FS
    confs: dict[str, str] = field(default_factory=dict)


def start(config: SessionConfig) -> SparkSession:
    """A session with a checkpoint directory set (MLlib's ALS needs one past ~20 iterations)."""
    builder = SparkSession.builder.appName(config.app_name)
    if config.master:
        builder = builder.master(config.master)
    if (config.master or "").startswith("local"):
        # Workers must run the driver's interpreter: the `python3` on PATH may be another version.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            builder.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
        )
    if config.driver_memory:
        builder = builder.config("spark.driver.memory", config.driver_memory)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in config.confs.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    checkpoint = config.checkpoint_dir or f"/tmp/als-checkpoints/{uuid.uuid4().hex}"
    spark.sparkContext.setCheckpointDir(checkpoint)
    _ship_package(spark)
    return spark


def _ship_package(spark: SparkSession) -> None:
    """Send this package to the executors, whose Python may not see the driver's files.

    Spark fetches the zip lazily and refuses a second file of the same name with other bytes,
    so the zip is byte-for-byte reproducible and kept until the process exits.
    """
    folder = Path(tempfile.mkdtemp(prefix="als-pkg-"))
    atexit.register(shutil.rmtree, folder, True)
    archive = folder / "recommender.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(PACKAGE_DIR.rglob("*.py")):
            info = zipfile.ZipInfo(str(Path("recommender") / path.relative_to(PACKAGE_DIR)))
            zf.writestr(info, path.read_bytes())
    spark.sparkContext.addPyFile(str(archive))
