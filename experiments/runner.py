"""Running one benchmark case as its own spark-submit process and reading its result line."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from experiments import rapids_explain
from experiments.environment import MachineLoad, TreeWatch, machine_load, sample_load
from experiments.grid import Case, Device
from experiments.redact import redact_command, redact_confs, redact_url
from recommender.data.sources import validated_conversion
from recommender.engine import Job
from recommender.launch import registry
from recommender.launch.submit import (
    LOOPBACK_MASTERS,
    SHUFFLE_PARTITIONS,
    Launch,
    command,
    job_arguments,
    shuffle_partitions,
    submit_env,
)
from recommender.params import ALSParams
from recommender.result import ResultLineError, parse_result_line


@dataclass(frozen=True)
class Target:
    """Where every case of a grid runs."""

    master: str = "local"  # local, spark://HOST:PORT or yarn
    driver_memory: str = "4g"
    executor_memory: str | None = None
    rapids_jar: str | None = None
    timeout_s: float = 3600.0

    @property
    def loopback(self) -> bool:
        return self.master.startswith(LOOPBACK_MASTERS)


@dataclass(frozen=True)
class CaseRun:
    """One round of a case: its parsed result line and the process's wall time."""

    result: dict[str, Any]
    wall_s: float
    explain: list[str]  # spark-rapids' explain lines and the phase markers, from stderr
    load: MachineLoad | None = None  # how busy the machine was around it


class CaseFailed(RuntimeError):
    """A case whose process failed or printed no valid result line."""


def launch_for(case: Case, target: Target, device: Device) -> Launch:
    """Resources and confs of `case`. Engines with a GPU solver of their own take no spark-rapids
    confs: on a GPU they run that solver there (`--device cuda`)."""
    confs = {SHUFFLE_PARTITIONS: str(shuffle_partitions(case.cores))}
    jars: tuple[str, ...] = ()
    if registry.get(case.impl).own_gpu_solver:
        device = Device("cpu", "")
    if device.uses_gpu:
        if not target.rapids_jar:
            raise CaseFailed(f"{case.id}: the GPU device needs the spark-rapids jar (--rapids-jar)")
        jars = (target.rapids_jar,)
    return Launch(
        master=target.master,
        cores=case.cores,
        driver_memory=target.driver_memory,
        executor_memory=target.executor_memory,
        confs=confs | device.confs_for(case.cores, local=target.master.startswith("local")),
        jars=jars,
    )


def case_job(case: Case, data: str, params: ALSParams, top_k: int = 0, include_rated: bool = False) -> Job:
    """What `case` runs on `data`: the grid's `params` with the case's swept values over them, with the
    recommend phase (`top_k`) where its implementation has one."""
    impl = registry.get(case.impl)
    return Job(case.api, data, case.data, case.als_params(params), top_k=top_k if impl.recommends else 0,
               exclude_rated=not include_rated, unique_pairs=validated_conversion(case.data))


def case_command(case: Case, csv: str, params: ALSParams, launch: Launch, top_k: int = 0,
                 include_rated: bool = False) -> list[str]:
    """The command of `case` (without a checkpoint directory), as the registry says to start it."""
    impl = registry.get(case.impl)
    device = "cuda" if case.device == "gpu" and impl.own_gpu_solver else "cpu"
    return command(impl, job_arguments(case_job(case, csv, params, top_k, include_rated)), launch, device=device)


def run(case: Case, cmd: list[str], target: Target) -> CaseRun:
    """Run `cmd` once; on a loopback master with a fresh checkpoint folder removed afterwards."""
    folder = tempfile.mkdtemp(prefix="als-checkpoint-") if target.loopback else None
    full = cmd + (["--checkpoint-dir", folder] if folder else [])
    started, before = time.perf_counter(), sample_load()
    with subprocess.Popen(full, env=submit_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        watch = TreeWatch(child.pid)
        try:
            stdout, stderr = child.communicate(timeout=target.timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            raise CaseFailed(f"{case.id}: no result after {target.timeout_s:.0f} s: {shlex.join(full)}") from None
        finally:
            tree_cpu_s = watch.cpu_s()
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
    proc = subprocess.CompletedProcess(full, child.returncode, stdout, stderr)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        raise CaseFailed(f"{case.id}: exit {proc.returncode}: {shlex.join(full)}\n{tail}")
    try:
        result = parse_result_line(proc.stdout)
    except ResultLineError as error:
        raise CaseFailed(f"{case.id}: {error}\n{proc.stdout[-2000:]}") from None
    load = machine_load(before, sample_load(), case.cores, tree_cpu_s=tree_cpu_s)
    return CaseRun(result, wall, rapids_explain.explain_lines(proc.stderr), load)


def _redacted(result: dict[str, Any]) -> dict[str, Any]:
    """The result line with its Spark master's credentials, if any, redacted."""
    spark = result["runtime"]["spark"]
    if not spark:
        return result
    return result | {"runtime": result["runtime"] | {"spark": spark | {"master": redact_url(spark["master"])}}}


def extra_info(case: Case, runs: list[CaseRun], cmd: list[str], launch: Launch,
               **more: Any) -> dict[str, Any]:
    """What pytest-benchmark stores with the case: its result line, every round's, the command, the
    machine's load (the busiest round's), with secret-looking confs and URLs redacted."""
    last = _redacted(runs[-1].result)
    busiest = max((r.load for r in runs if r.load), key=lambda m: m.others, default=None)
    explained = rapids_explain.parse(runs[-1].explain)
    gpu = {"gpu_explain": {"phases": {k: v.as_dict() for k, v in explained.items()},
                           "raw": runs[-1].explain}} if explained else {}
    return gpu | {
        "case": {"impl": case.impl, "api": case.api, "device": case.device,
                 "cores": case.cores, "data": case.data, "swept": dict(case.swept)},
        "result": last,
        "rounds": [{"wall_s": round(r.wall_s, 4), "phases": r.result["phases"],
                    "metrics": r.result["metrics"], "runtime": _redacted(r.result)["runtime"],
                    "machine_load": r.load.as_dict() if r.load else None}
                   for r in runs],
        "machine_load": busiest.as_dict() if busiest else None,
        "command": shlex.join(redact_command(cmd)),
        "confs": redact_confs(dict(launch.confs)),
        "master": redact_url(launch.master_url()),
        "versions": {kind: info["version"] for kind, info in last["runtime"].items() if info},
        "input_bytes": last["input_bytes"],
    } | more
