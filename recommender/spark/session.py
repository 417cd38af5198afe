"""Creating the SparkSession the same way for local mode and for a real cluster, and the one
place that runs a job inside one and stops it afterwards."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]  # py4j ships no stubs
from pyspark.sql import SparkSession

from recommender.data.formats import BadInputError
from recommender.engine import Job, execute
from recommender.launch.registry import Implementation
from recommender.result import RunResult
from recommender.spark.config import SessionConfig
from recommender.spark.loading import SINGULAR, caused_by, singular_fit
from recommender.timing import PhaseTimer

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CHECKPOINT_ROOT = "/tmp/als-checkpoints"


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
    spark.sparkContext.setCheckpointDir(config.checkpoint_dir or f"{CHECKPOINT_ROOT}/{uuid.uuid4().hex}")
    _ship_package(spark)
    return spark


@contextmanager
def spark_session(config: SessionConfig) -> Iterator[SparkSession]:
    """A started session, stopped on the way out; a checkpoint folder it made itself is removed."""
    spark = start(config)
    try:
        yield spark
    finally:
        if config.checkpoint_dir is None:
            _remove(spark, spark.sparkContext.getCheckpointDir())
        spark.stop()


def _remove(spark: SparkSession, folder: str | None) -> None:
    """Delete `folder` on whatever file system it is (local, HDFS, S3), through Hadoop's API."""
    if not folder:
        return
    jvm, sc = spark.sparkContext._jvm, spark.sparkContext
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(folder).getParent()  # Spark adds a per-context subfolder
    path.getFileSystem(sc._jsc.hadoopConfiguration()).delete(path, True)


def run_in_session(spark: SparkSession, impl: Implementation, job: Job) -> RunResult:
    """Run `impl`'s engine on `job` in the open session `spark` (which it leaves open); MLlib's
    solver failing on a singular normal matrix is a clean error naming the input, not a Java trace."""
    try:
        return execute(impl, job, phase_timer(spark))
    except Py4JJavaError as error:
        if not caused_by(error, SINGULAR):
            raise
        raise BadInputError(job.path, singular_fit(job.params.rank, job.params.reg)) from None


def phase_timer(spark: SparkSession) -> PhaseTimer:
    """A timer whose phase markers go to the JVM's stderr, where Spark's own log goes."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return PhaseTimer(emit=jvm.System.err.println)


def _ship_package(spark: SparkSession) -> None:
    """Send this package to the executors, whose Python may not see the driver's files.

    Spark fetches the zip lazily and refuses a second file of the same name with other bytes,
    so the zip is byte-for-byte reproducible and kept until the process exits.
    """
    folder = Path(tempfile.mkdtemp(prefix="als-pkg-"))
    atexit.register(shutil.rmtree, folder, True)
    archive = folder / "recommender.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(PACKAGE_DIR.rglob("*.py")) + sorted(PACKAGE_DIR.rglob("*.json")):
            info = zipfile.ZipInfo(str(Path("recommender") / path.relative_to(PACKAGE_DIR)))
            zf.writestr(info, path.read_bytes())
    spark.sparkContext.addPyFile(str(archive))
