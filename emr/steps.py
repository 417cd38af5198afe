"""The EMR steps of a grid: fetch the code and build the jar, then one step per case and round."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from experiments.grid import Case, Device
from experiments.runner import case_job, shuffle_partitions
from recommender.launch import registry
from recommender.launch.submit import Launch, command, job_arguments
from recommender.params import ALSParams

REMOTE_ROOT = "/home/hadoop/als"
EMR_IMPLS = tuple(impl.name for impl in registry.IMPLEMENTATIONS if impl.emr)


@dataclass(frozen=True)
class Layout:
    """Where a step finds the suite and Spark: the master node by default.

    The integration test swaps in this checkout, this Spark and a local standalone master; every
    other argument of the step stays the same.
    """

    root: str = REMOTE_ROOT
    spark_submit: str = "spark-submit"
    master: str = "yarn"


def case_launch(case: Case, device: Device, layout: Layout = Layout()) -> Launch:
    """A case's resources and confs; spark-rapids itself is on the GPU cluster's classpath."""
    if case.impl not in EMR_IMPLS:
        raise ValueError(f"{case.id}: only {', '.join(EMR_IMPLS)} run as EMR steps")
    return Launch(
        master=layout.master,
        cores=case.cores,
        confs={"spark.submit.deployMode": "client",
               "spark.sql.shuffle.partitions": str(shuffle_partitions(case.cores))}
        | device.confs_for(case.cores, local=layout.master.startswith("local")),
    )


def case_command(case: Case, data_uri: str, params: ALSParams, launch: Launch,
                 layout: Layout = Layout(), top_k: int = 0, include_rated: bool = False) -> list[str]:
    """The spark-submit command a case's step runs (client mode: the driver on the master)."""
    args = job_arguments(case_job(case, data_uri, params, top_k, include_rated))
    return command(registry.get(case.impl), args, launch, root=layout.root, executable=layout.spark_submit)


def setup_step(code_uri: str, root: str = REMOTE_ROOT) -> dict[str, Any]:
    """Copy the code onto the master and build the jar with the cluster's own Spark jars."""
    script = (f"aws s3 cp --quiet {code_uri}/setup.sh /tmp/als-setup.sh"
              f" && bash /tmp/als-setup.sh {code_uri}/code.zip {root}")
    return {
        "Name": "setup: fetch the code, build the jar with this cluster's Spark",
        "ActionOnFailure": "CANCEL_AND_WAIT",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["bash", "-c", script]},
    }


def case_step(case: Case, round_no: int, command: list[str], result_uri: str,
              root: str = REMOTE_ROOT) -> dict[str, Any]:
    """One round of one case; a failing case does not stop the others."""
    return {
        "Name": f"{case.id} round {round_no}",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar",
                          "Args": ["bash", f"{root}/emr/remote/run_case.sh", result_uri, *command]},
    }
