"""The grid on EMR, end to end: estimate, upload, launch (or reuse), steps, wait, collect, terminate.

The results file is pytest-benchmark JSON like the local grid's, but each round's time is the
step's own start and end time on the cluster, not this machine's polling.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest_benchmark
from pytest_benchmark.stats import Stats
from tqdm import tqdm

from emr import cost, launcher, sizing, steps
from emr.launcher import Aws, EmrError, StepRun, Storage
from emr.spec import ClusterOptions
from experiments import grid as grid_module
from experiments import rapids_explain, runner
from experiments.grid import Case, Device, Selection
from recommender.launch.submit import Launch
from recommender.params import ALSParams
from recommender.result import ResultLineError, parse_result_line

DEFAULT_CORES = 16  # 2 core nodes of 8 vCPUs, the default cluster


@dataclass(frozen=True)
class GridPlan:
    """What to run: cases, rounds, ALS parameters, the device profile, and the local data files."""

    cases: list[Case]
    rounds: int
    params: ALSParams
    device: Device
    datasets: dict[str, str]  # data set name -> local file to upload: a case's CSV, an expansion's base
    ratings: dict[str, int]  # data set name -> ratings, for the estimate and the cluster's size
    top_k: int = 0  # the grid's recommend phase, for the implementations that have one
    include_rated: bool = False
    expansions: dict[str, str] = field(default_factory=dict)  # fractal set -> its base, generated on the cluster


def plan_estimate(options: ClusterOptions, plan: GridPlan, prices: Path = cost.PRICES) -> cost.Estimate:
    hours = sum(cost.case_hours(c.impl, c.api, plan.ratings.get(c.data, 0), c.cores) for c in plan.cases)
    cores = sizing.node(options, prices).vcpus * options.core_count
    generation = sum(cost.generation_hours(plan.ratings.get(name, 0), cores) for name in plan.expansions)
    return cost.estimate(options, hours * plan.rounds + generation, prices)


def size_problem(options: ClusterOptions, plan: GridPlan, prices: Path = cost.PRICES) -> str | None:
    """Why the cluster is too small to hold the grid's largest data set in memory; None when it fits."""
    used = {name: plan.ratings.get(name, 0) for name in dict.fromkeys(c.data for c in plan.cases)}
    return sizing.shortfall(used, options, sizing.node(options, prices))


def run_grid(aws: Aws, options: ClusterOptions, storage: Storage, plan: GridPlan, out: Path,
             cluster_id: str | None = None, keep: bool = False, interval_s: float = 30.0,
             prices: Path = cost.PRICES) -> Path:
    """Run `plan` on a new cluster (or `cluster_id`) and write `out`. A cluster this call started
    is terminated on every way out (failure, Ctrl-C) unless `keep`; the finished cases' results
    are written even when others failed."""
    estimate = plan_estimate(options, plan, prices)
    print(estimate.line(), flush=True)
    problem = size_problem(options, plan, prices)
    if problem:
        raise EmrError(problem)
    node = sizing.node(options, prices)
    aws.check_bucket(storage.bucket)
    data_uris = launcher.upload(aws, storage, plan.datasets)
    started: str | None = None
    runs: list[StepRun] = []
    try:
        if cluster_id is None:
            cluster_id = started = launcher.launch(aws, options, storage)
            print(f"launched {cluster_id} ({'GPU' if options.gpu else 'CPU'}, "
                  f"{options.core_count} x {options.worker_type})", flush=True)
        requests = [steps.setup_step(storage.uri("code"))]
        for name, base in plan.expansions.items():
            out_uri = storage.uri("data", launcher.data_folder(name))
            requests.append(steps.generate_step(name, data_uris[base], out_uri, node, options.core_count))
            data_uris[name] = steps.expansion_csv(out_uri)
        for case in plan.cases:
            command = steps.case_command(case, data_uris[case.data], plan.params,
                                         steps.case_launch(case, plan.device, node=node), top_k=plan.top_k,
                                         include_rated=plan.include_rated)
            for round_no in range(plan.rounds):
                result_uri = storage.uri("results", case.id.replace(":", "_"), f"round-{round_no}")
                requests.append(steps.case_step(case, round_no, command, result_uri))
        runs = launcher.add_steps(aws, cluster_id, requests)
        with tqdm(total=len(runs), desc=f"EMR {cluster_id} steps", unit="step") as bar:

            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            launcher.wait(aws, cluster_id, runs, interval_s, progress=progress)
    finally:
        try:
            if runs and cluster_id:
                found = cluster_id
                launcher.retried("polling", found, lambda: launcher.poll(aws, found, runs))
                write_results(aws, runs, options, cluster_id, out, estimate)
        finally:
            if started and not keep:
                launcher.terminate(aws, started)
                print(f"terminated {started}", file=sys.stderr, flush=True)
    failed = [run for run in runs if run.state != "COMPLETED"]
    if failed:
        names = "; ".join(f"{run.name}: {run.state} {run.reason}".strip() for run in failed[:10])
        raise EmrError(f"{len(failed)} of {len(runs)} steps did not complete ({names}); "
                       f"the finished cases are in {out}")
    return out


def fetch(aws: Aws, options: ClusterOptions, cluster_id: str, out: Path) -> Path:
    """Collect the results of every finished case step of `cluster_id` (an earlier run)."""
    runs = launcher.existing_steps(aws, cluster_id)
    launcher.poll(aws, cluster_id, runs)
    return write_results(aws, runs, options, cluster_id, out, None)


def _case_runs(aws: Aws, runs: list[StepRun]) -> list[runner.CaseRun]:
    """The completed rounds of one case, timed by the cluster's own step timeline."""
    done = []
    for run in runs:
        if run.state != "COMPLETED" or not run.started or not run.ended:
            continue
        stdout = launcher.read_text(aws, f"{run.result_uri}/stdout.txt") or ""
        stderr = launcher.read_text(aws, f"{run.result_uri}/stderr.txt") or ""
        try:
            result = parse_result_line(stdout)
        except ResultLineError as error:
            run.state, run.reason = "FAILED", f"no result: {error}"
            continue
        seconds = (run.ended - run.started).total_seconds()
        done.append(runner.CaseRun(result, seconds, rapids_explain.explain_lines(stderr)))
    return done


def _launch_of(command: list[str]) -> Launch:
    """The master and confs a step's spark-submit command carries."""
    confs = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "--conf")
    master = command[command.index("--master") + 1] if "--master" in command else None
    return Launch(master=master, confs=confs)


def write_results(aws: Aws, runs: list[StepRun], options: ClusterOptions, cluster_id: str,
                  out: Path, estimate: cost.Estimate | None) -> Path:
    """pytest-benchmark JSON of every case with at least one completed round."""
    by_case: dict[str, list[StepRun]] = {}
    for run in runs:
        if run.case_id is not None:
            by_case.setdefault(run.case_id, []).append(run)
    benchmarks = []
    for case_id, mine in by_case.items():
        case = Case.parse(case_id)
        case_runs = _case_runs(aws, mine)
        if not case_runs:
            continue
        stats = Stats()
        for case_run in case_runs:
            stats.update(case_run.wall_s)
        extra = runner.extra_info(case, case_runs, mine[0].command, _launch_of(mine[0].command), emr={
            "cluster_id": cluster_id,
            "steps": [{"id": r.step_id, "state": r.state, "start": str(r.started), "end": str(r.ended)}
                      for r in mine],
        })
        benchmarks.append({
            "group": f"{case.data} {case.device}", "name": f"test_case[{case.id}]",
            "fullname": f"emr::{case.id}", "params": {"impl": case.impl, "api": case.api,
                                                     "device": case.device, "cores": case.cores,
                                                     "data": case.data},
            "param": case.id, "extra_info": extra, "options": {"timer": "EMR step timeline"},
            "stats": stats.as_dict() | {"iterations": 1},
        })
    document = {"machine_info": machine_info(options, cluster_id, benchmarks, estimate),
                "commit_info": {}, "benchmarks": benchmarks,
                "datetime": datetime.now(UTC).isoformat(),
                "version": pytest_benchmark.__version__}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, default=str))
    return out


def machine_info(options: ClusterOptions, cluster_id: str, benchmarks: list[dict[str, Any]],
                 estimate: cost.Estimate | None) -> dict[str, Any]:
    """pytest-benchmark's machine_info for a cluster, with the suite's `als` section."""
    spark = benchmarks[0]["extra_info"]["versions"]["spark"] if benchmarks else None
    return {
        "node": f"emr:{cluster_id}", "processor": options.worker_type, "machine": "emr",
        "python_implementation": "CPython", "python_version": platform.python_version(),
        "system": "Linux", "release": options.release_label,
        "als": {"label": f"EMR {options.release_label} {options.core_count}x{options.worker_type}",
                "master": "yarn", "java": None, "spark": spark, "scala": None,
                "cpu_model": options.worker_type, "cpu_count": None, "memory_gb": None,
                "gpus": [options.worker_type] if options.gpu else [], "grid": "emr",
                "cluster_id": cluster_id, "cost": estimate.as_dict() if estimate else None,
                "cluster": {"release": options.release_label, "region": options.region,
                            "master": options.master_type, "core": options.worker_type,
                            "core_count": options.core_count, "market": options.market}},
    }


def cluster_cores(options: ClusterOptions, prices: Path = cost.PRICES) -> int:
    """vCPUs of all core nodes: what a grid's `all` cores means on the cluster."""
    return sizing.node(options, prices).vcpus * options.core_count


def build_plan(grid_name: str, gpu: bool, selection: Selection | None = None,
               rounds: int | None = None, prepare_data: bool = True, cores: int = DEFAULT_CORES) -> GridPlan:
    """The cases of a grid that run on one EMR cluster of `cores` vCPUs (what `all` means there):
    its device's, Spark implementations only.

    MovieLens sets that are neither mirrored nor cached run as their synthetic shape. A fractal
    expansion is generated on the cluster from its uploaded base, never here. With `prepare_data`
    every file to upload is prepared: each case's CSV, and each expansion's base (its Parquet).
    """
    from recommender.data.fractal import FRACTAL, parse_fractal
    from recommender.data.sources import prepare

    catalogue = grid_module.load()
    chosen = catalogue.grid(grid_name)
    device = "gpu" if gpu else "cpu"
    cases = [c for c in grid_module.expand(catalogue, chosen, cores, selection, grid_module.resolve_data,
                                           grid_module.expected_ratings)
             if c.device == device and c.impl in steps.EMR_IMPLS and not c.skip]
    if not cases:
        raise EmrError(f"grid {grid_name!r} has no {device} cases for {', '.join(steps.EMR_IMPLS)}")
    names = list(dict.fromkeys(c.data for c in cases))
    expansions = {name: parse_fractal(name).base for name in names if name.startswith(FRACTAL)}
    files: dict[str, str] = {}
    if prepare_data:
        files = {name: prepare(name).input_for(reads_parquet=False) for name in names if name not in expansions}
        for base in dict.fromkeys(expansions.values()):
            if base not in files:
                prepared = prepare(base)
                files[base] = prepared.input_for(reads_parquet=True)
    return GridPlan(cases, rounds or chosen.rounds, chosen.params, catalogue.devices[device], files,
                    {name: grid_module.expected_ratings(name) or 0 for name in names}, chosen.top_k,
                    chosen.include_rated, expansions)
