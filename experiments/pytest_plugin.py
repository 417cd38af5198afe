"""pytest options, fixtures and hooks that turn `grid.toml` into pytest-benchmark cases.

    pytest -m grid --grid local --benchmark-json results/local.json
    pytest -m grid --grid smoke --spark-master standalone --impls scala,java
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from experiments import environment, grid
from experiments.runner import Target
from experiments.standalone import ClusterShape, standalone_cluster

REMOTE_MAX_CORES = 8  # a spark:// or YARN master without --max-cores: the study's largest executor
CASE_ARGS = ("impl", "api", "device", "cores", "data", "swept")  # plain values: they land in the JSON's params
STANDALONE_SHAPE = ClusterShape(workers=2, cores_per_worker=max(1, (os.cpu_count() or 2) // 2))


def _csv(kind: type = str) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        return [kind(part.strip()) for part in text.split(",") if part.strip()]

    return parse


def _param_option(text: str) -> tuple[str, list[Any]]:
    try:
        return grid.parse_param_option(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("als", "ALS benchmark grid (experiments/grid.toml)")
    group.addoption("--grid", default="smoke", help="grid to run: smoke (default), local, gpu, study")
    group.addoption("--impls", type=_csv(), default=None, help="only these, e.g. python,scala")
    group.addoption("--apis", type=_csv(), default=None, help="only these: rdd, df")
    group.addoption("--devices", type=_csv(), default=None, help="only these: cpu, gpu")
    group.addoption("--cores", type=_csv(int), default=None, help="only these core counts")
    group.addoption("--datasets", type=_csv(), default=None, help="only these data sets")
    group.addoption("--param", type=_param_option, action="append", default=None, metavar="KEY=V1,V2",
                    help="only cases whose ALS parameter KEY is one of these, e.g. rank=10,64 or implicit=true; "
                         "repeat for more keys")
    group.addoption("--rounds", type=int, default=None, help="rounds per case (default: the grid's)")
    group.addoption("--spark-master", default="local",
                    help="local (default), standalone (a master and 2 workers started on "
                         "127.0.0.1 for the session), spark://HOST:PORT or yarn")
    group.addoption("--max-cores", type=int, default=None,
                    help="cores the master offers (default: this machine's, the standalone cluster's, "
                         "or 8 for another master)")
    group.addoption("--driver-memory", default="4g")
    group.addoption("--executor-memory", default=None)
    group.addoption("--rapids-jar", default=os.environ.get("SPARK_RAPIDS_JAR"),
                    help="the spark-rapids jar for GPU cases (default $SPARK_RAPIDS_JAR)")
    group.addoption("--label", default=None, help="names this machine or cluster in reports")
    tensor = parser.getgroup("tensor", "the PyTorch engine's benchmark (experiments/tensor_bench.py)")
    tensor.addoption("--tensor-data", type=_csv(), default=["synthetic:ml-20m", "synthetic:ml-25m"])
    tensor.addoption("--tensor-devices", type=_csv(), default=["cuda", "cpu"])
    tensor.addoption("--tensor-ranks", type=_csv(int), default=[10, 32, 64, 128], help="ranks on CUDA")
    tensor.addoption("--tensor-cpu-ranks", type=_csv(int), default=[10, 32], help="ranks on the CPU")
    tensor.addoption("--tensor-iterations", type=int, default=10)
    tensor.addoption("--tensor-top-k", type=int, default=10)
    tensor.addoption("--tensor-rounds", type=int, default=1)


@dataclass(frozen=True)
class GridSession:
    """The grid chosen on the command line, shared by every case."""

    catalogue: grid.Catalogue
    grid: grid.Grid
    rounds: int


def _max_cores(config: pytest.Config) -> int:
    explicit = config.getoption("--max-cores")
    if explicit:
        return explicit
    master = config.getoption("--spark-master")
    if master == "standalone":
        return STANDALONE_SHAPE.cores
    if master.startswith("local"):
        return os.cpu_count() or 1
    return REMOTE_MAX_CORES


def _selection(config: pytest.Config) -> grid.Selection:
    return grid.Selection(
        impls=config.getoption("--impls"),
        apis=config.getoption("--apis"),
        devices=config.getoption("--devices"),
        cores=config.getoption("--cores"),
        data=config.getoption("--datasets"),
        params=dict(config.getoption("--param")) if config.getoption("--param") else None,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not set(CASE_ARGS) <= set(metafunc.fixturenames):
        return
    config = metafunc.config
    catalogue = grid.load()
    chosen = catalogue.grid(config.getoption("--grid"))
    cases = grid.expand(catalogue, chosen, _max_cores(config), _selection(config), grid.resolve_data,
                        grid.expected_ratings)
    params = []
    for case in cases:
        marks = [pytest.mark.gpu] if catalogue.devices[case.device].uses_gpu else []
        if case.skip:
            marks.append(pytest.mark.skip(reason=case.skip))
        if case.data != "ml-100k":
            marks.append(pytest.mark.slow)
        values = (case.impl, case.api, case.device, case.cores, case.data, dict(case.swept))
        params.append(pytest.param(*values, id=case.id, marks=marks))
    metafunc.parametrize(CASE_ARGS, params)


@pytest.fixture(scope="session")
def grid_session(pytestconfig: pytest.Config) -> GridSession:
    catalogue = grid.load()
    chosen = catalogue.grid(pytestconfig.getoption("--grid"))
    return GridSession(catalogue, chosen, pytestconfig.getoption("--rounds") or chosen.rounds)


@pytest.fixture(scope="session")
def grid_target(pytestconfig: pytest.Config) -> Iterator[Target]:
    """Where the cases run; `--spark-master standalone` starts (and stops) a local cluster."""
    options = {
        "driver_memory": pytestconfig.getoption("--driver-memory"),
        "executor_memory": pytestconfig.getoption("--executor-memory"),
        "rapids_jar": pytestconfig.getoption("--rapids-jar"),
    }
    master = pytestconfig.getoption("--spark-master")
    if master != "standalone":
        yield Target(master=master, **options)
        return
    memory = options["executor_memory"] or "2g"
    with standalone_cluster(STANDALONE_SHAPE) as cluster:
        yield Target(master=cluster.master_url, **options | {"executor_memory": memory})


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Record the Java, Spark and Scala versions, CPU and GPU models and where the grid ran."""
    master = config.getoption("--spark-master", default="local")
    described = environment.describe(master, config.getoption("--label", default=None))
    machine_info["als"] = described.as_dict() | {"grid": config.getoption("--grid", default=None)}
