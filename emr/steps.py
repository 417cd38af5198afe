"""The EMR steps of a grid: fetch the code and build the jar, generate the fractal expansions the
grid reads (on the cluster, from their uploaded base), then one step per case and round."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from emr.sizing import Node
from experiments.grid import Case, Device
from experiments.runner import case_job
from recommender.data.fractal import parse_fractal
from recommender.data.fractal_output import CSV_PARTS
from recommender.launch import registry
from recommender.launch.submit import (
    SHUFFLE_PARTITIONS,
    Launch,
    command,
    job_arguments,
    shuffle_partitions,
    spark_submit,
)
from recommender.params import ALSParams

REMOTE_ROOT = "/home/hadoop/als"
FRACTAL_SCRIPT = "recommender/spark/fractal.py"
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


def case_launch(case: Case, device: Device, layout: Layout = Layout(), node: Node | None = None) -> Launch:
    """A case's resources and confs; spark-rapids itself is on the GPU cluster's classpath.

    On a `node` of the cluster, a case of up to a node's cores is one executor (the study's sweep)
    and a larger one spreads over whole nodes; each executor's heap fills the node's YARN share.
    """
    if case.impl not in EMR_IMPLS:
        raise ValueError(f"{case.id}: only {', '.join(EMR_IMPLS)} run as EMR steps")
    executors = 1 if node is None or case.cores <= node.vcpus else math.ceil(case.cores / node.vcpus)
    return Launch(
        master=layout.master,
        cores=case.cores,
        executors=executors,
        executor_memory=f"{node.executor_memory_gib}g" if node else None,
        confs={"spark.submit.deployMode": "client",
               SHUFFLE_PARTITIONS: str(shuffle_partitions(case.cores))}
        | device.confs_for(case.cores, local=layout.master.startswith("local")),
    )


def expansion_csv(out_uri: str) -> str:
    """The study's CSV of an expansion written to `out_uri` on a cluster: a folder of parts."""
    return f"{out_uri}/{CSV_PARTS}"


def generate_step(name: str, base_uri: str, out_uri: str, node: Node, nodes: int,
                  layout: Layout = Layout()) -> dict[str, Any]:
    """Write expansion `name` of the base uploaded at `base_uri` into `out_uri`, as Parquet and CSV
    parts, with one Spark task per block row on every core of the cluster (resumable: a rerun keeps
    the parts written). The cases after it read `expansion_csv(out_uri)`."""
    spec = parse_fractal(name)
    launch = Launch(master=layout.master, cores=node.vcpus * nodes, executors=nodes,
                    executor_memory=f"{node.executor_memory_gib}g", driver_memory="8g",
                    confs={"spark.submit.deployMode": "client", "spark.sql.execution.arrow.pyspark.enabled": "true"})
    on_cluster = replace(spec, base=base_uri).name  # the same blocks: the seed and shape travel with it
    args = spark_submit(launch, [f"{layout.root}/{FRACTAL_SCRIPT}"], [on_cluster, out_uri, "--csv"],
                        layout.spark_submit)
    return {
        "Name": f"generate {name}",
        "ActionOnFailure": "CANCEL_AND_WAIT",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


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
