"""spark-submit command lines, built one way for every implementation and every kind of master."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recommender.launch.registry import Implementation, Launcher

if TYPE_CHECKING:
    from recommender.engine import Job

ROOT = Path(__file__).resolve().parents[2]
ENTRY = Path("recommender") / "entry.py"  # relative to a checkout's root
JAR = Path("scala") / "target" / "als-recommender.jar"
MASTER_PATTERN = re.compile(r"^(local(\[(\*|[1-9][0-9]*)(,[0-9]+)?\])?|(spark|k8s|mesos)://\S+|yarn)$")
LOOPBACK_MASTERS = ("local", "spark://127.0.0.1:", "spark://localhost:")
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


@dataclass(frozen=True)
class Launch:
    """Where an application runs and with what resources; `cores` is the number of task slots.

    `cores` becomes `local[N]` in local mode, `--total-executor-cores N` on a standalone master
    and, on YARN, `executors` executors of cores/executors cores each: one executor of N cores is
    the study's executor-cores sweep; a case larger than a node spreads over several.
    """

    master: str | None = "local[2]"
    cores: int | None = None
    executors: int = 1  # YARN: the executors the cores are spread over
    driver_memory: str | None = None
    executor_memory: str | None = None
    confs: Mapping[str, str] = field(default_factory=dict)
    jars: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.cores is not None and (self.executors < 1 or self.cores % self.executors):
            raise ValueError(f"{self.cores} cores do not spread evenly over {self.executors} executors")

    def master_url(self) -> str | None:
        if self.master and self.master.startswith("local") and self.cores is not None:
            return f"local[{self.cores}]"
        return self.master


def spark_bin() -> Path:
    """The folder holding the spark-submit of the Spark that runs this process."""
    import pyspark

    home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
    return Path(home) / "bin"


def resource_args(launch: Launch) -> list[str]:
    """The spark-submit options that give the application `launch.cores` task slots."""
    master = launch.master_url()
    args = ["--master", master] if master else []
    if launch.driver_memory:
        args += ["--driver-memory", launch.driver_memory]
    if launch.executor_memory and not (master or "").startswith("local"):
        args += ["--executor-memory", launch.executor_memory]
    if launch.cores is not None and master:
        if master.startswith("spark://"):
            args += ["--total-executor-cores", str(launch.cores)]
        elif master == "yarn":
            args += ["--num-executors", str(launch.executors), "--executor-cores",
                     str(launch.cores // launch.executors)]
    return args


def spark_submit(launch: Launch, app: Sequence[str], app_args: Sequence[str],
                 executable: str | None = None) -> list[str]:
    """`spark-submit [resources] [confs] [jars] APP APP_ARGS` for `launch`.

    `executable` names another spark-submit (a cluster node's own); default: this Spark's.
    """
    confs = dict(launch.confs)
    if (launch.master_url() or "").startswith(LOOPBACK_MASTERS):
        # A laptop or a sandbox: keep the driver on the loopback and the UI off.
        confs = {"spark.driver.host": "127.0.0.1", "spark.ui.enabled": "false"} | confs
    cmd = [executable or str(spark_bin() / "spark-submit"), *resource_args(launch)]
    for key, value in confs.items():
        cmd += ["--conf", f"{key}={value}"]
    if launch.jars:
        cmd += ["--jars", ",".join(launch.jars)]
    return [*cmd, *app, *app_args]


def shuffle_partitions(cores: int) -> int:
    """Two shuffle partitions per core: Spark's default of 200 dwarfs small sets' real work."""
    return 2 * cores


def local_confs(master: str, confs: Mapping[str, str]) -> dict[str, str]:
    """`confs`, with `shuffle_partitions` for a `local[N]` master's N cores (`local`: one) where they
    set none; `local[*]` and cluster masters keep Spark's default, their cores unknown here."""
    found = MASTER_PATTERN.match(master)
    if not master.startswith("local") or found is None or found.group(3) == "*" or SHUFFLE_PARTITIONS in confs:
        return dict(confs)
    return {SHUFFLE_PARTITIONS: str(shuffle_partitions(int(found.group(3) or 1)))} | dict(confs)


def check_master(master: str) -> None:
    """A ValueError, before Spark starts, for a master URL Spark would not accept."""
    if not MASTER_PATTERN.match(master):
        raise ValueError(f"--master {master!r}: expected local, local[N], local[*], spark://HOST:PORT, yarn or k8s://URL")


def job_arguments(job: Job, checkpoint_dir: str | None = None) -> list[str]:
    """The arguments that the entry script, the Scala and the Java programs all accept."""
    args = [job.path, "--api", job.api, *job.params.as_arguments(), "--data", job.data]
    if job.skip_bad_rows:
        args += ["--skip-bad-rows"]
    if job.unique_pairs:
        args += ["--unique-pairs"]
    if job.top_k:
        args += ["--top-k", str(job.top_k)] + ([] if job.exclude_rated else ["--include-rated"])
        args += [] if job.relevance is None else ["--relevance", repr(job.relevance)]
    if job.test is not None:
        args += ["--test", job.test]
    if job.clip is not None:
        args += ["--clip", f"{job.clip[0]!r},{job.clip[1]!r}"]
    if checkpoint_dir:
        args += ["--checkpoint-dir", checkpoint_dir]
    return args


def command(impl: Implementation, args: Sequence[str], launch: Launch, root: str | Path = ROOT,
            executable: str | None = None, device: str = "cpu") -> list[str]:
    """The command that runs `impl` with the shared `args`, from the checkout at `root`.

    JVM programs and PySpark engines are spark-submitted (with `executable`, default this Spark's);
    a Spark-less engine is a plain Python process with `launch.cores` threads.
    """
    if impl.launcher is Launcher.JVM:
        assert impl.main_class is not None
        return spark_submit(launch, ["--class", impl.main_class, f"{root}/{JAR}"], args, executable)
    args = [*args, "--impl", impl.name, "--device", device]
    if impl.launcher is Launcher.PYTHON:
        threads = ["--threads", str(launch.cores)] if launch.cores else []
        return [sys.executable, f"{root}/{ENTRY}", *args, *threads]
    return spark_submit(launch, [f"{root}/{ENTRY}"], args, executable)


def submit_env() -> dict[str, str]:
    """spark-submit's launcher scripts locate Spark through Python: give them this one."""
    return os.environ | {"PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
