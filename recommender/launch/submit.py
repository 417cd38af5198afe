"""spark-submit command lines, built one way for every implementation and every kind of master."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recommender.params import ALSParams

ROOT = Path(__file__).resolve().parents[2]
PYTHON_ENTRY = ROOT / "recommender" / "entry.py"
TORCH_ENTRY = ROOT / "recommender" / "torch_entry.py"
LOOPBACK_MASTERS = ("local", "spark://127.0.0.1:", "spark://localhost:")


@dataclass(frozen=True)
class Launch:
    """Where an application runs and with what resources; `cores` is the number of task slots.

    `cores` becomes `local[N]` in local mode, `--total-executor-cores N` on a standalone master
    and one executor of N cores on YARN (the study's executor-cores sweep).
    """

    master: str | None = "local[2]"
    cores: int | None = None
    driver_memory: str | None = None
    executor_memory: str | None = None
    confs: Mapping[str, str] = field(default_factory=dict)
    jars: tuple[str, ...] = ()

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
            args += ["--num-executors", "1", "--executor-cores", str(launch.cores)]
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


def als_arguments(
    input_path: str,
    api: str,
    params: ALSParams,
    data_name: str | None = None,
    skip_bad_rows: bool = False,
) -> list[str]:
    """The arguments that the Python entry point, the Scala and the Java programs all accept."""
    args = [input_path, "--api", api, "--rank", str(params.rank)]
    args += ["--iterations", str(params.iterations), "--reg", repr(params.reg)]
    args += ["--seed", str(params.seed), "--holdout", repr(params.holdout)]
    if params.blocks is not None:
        args += ["--blocks", str(params.blocks)]
    if data_name:
        args += ["--data", data_name]
    if skip_bad_rows:
        args += ["--skip-bad-rows"]
    return args


def submit_env() -> dict[str, str]:
    """spark-submit's launcher scripts locate Spark through Python: give them this one."""
    return os.environ | {"PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
