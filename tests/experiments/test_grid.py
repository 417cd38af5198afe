"""Expanding grid.toml into cases, and the spark-submit command lines the cases run."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import grid, runner
from experiments.grid import Case, Selection
from recommender.launch import registry
from recommender.launch.submit import Launch, resource_args, spark_submit
from recommender.params import ALSParams

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def catalogue() -> grid.Catalogue:
    return grid.load()


def test_every_grid_in_the_file_expands(catalogue: grid.Catalogue) -> None:
    for name, chosen in catalogue.grids.items():
        cases = grid.expand(catalogue, chosen, max_cores=8)
        assert cases, name
        assert len(set(cases)) == len(cases), f"{name} repeats a case"
        assert all(c.api in registry.get(c.impl).apis for c in cases), "an implementation's own APIs only"
        assert chosen.params.rank == (10 if name in ("engines", "billion_local") else 8)


def test_the_study_grid_is_the_papers_sweeps(catalogue: grid.Catalogue) -> None:
    cases = grid.expand(catalogue, catalogue.grid("study"), max_cores=8)
    gpu_cores = {c.cores for c in cases if c.device == "gpu"}
    sizes = {c.data for c in cases if c.device == "cpu" and c.cores == 8}
    assert gpu_cores == {1, 2, 4, 8}
    assert {"ml-100k", "ml-1m", "ml-20m", "ml-25m"} <= sizes
    assert catalogue.params == ALSParams(rank=8, iterations=15, reg=0.01, seed=42, holdout=0.0)


def test_cores_beyond_the_machine_are_dropped_and_all_means_every_core(catalogue: grid.Catalogue) -> None:
    cases = grid.expand(catalogue, catalogue.grid("study"), max_cores=2)
    assert {c.cores for c in cases} == {1, 2}
    sizes = {c.data for c in cases if c.cores == 2}
    assert "ml-25m" in sizes  # the data-set sweep's "all" became 2


def test_the_local_grid_stays_small(catalogue: grid.Catalogue) -> None:
    cases = grid.expand(catalogue, catalogue.grid("local"), max_cores=2)
    assert {c.device for c in cases} == {"cpu"}
    assert {c.data for c in cases} == {"ml-100k", "ml-1m", "positives:4:ml-100k"}
    # 5 MLlib implementation/API pairs: 1M on 1 and 2 cores, 100k on 2; both PyTorch engines on both
    studied = [c for c in cases if not c.swept]
    assert len(studied) == 5 * 3 + 2 * 2
    assert {(c.impl, c.api) for c in studied if c.impl.startswith("torch")} == {
        ("torch", "none"), ("torch-spark", "df")}
    # The peers on ml-100k at rank 10, each at 5 and 15 iterations: implicit and torch implicit, LensKit both
    # ways, torch explicit.
    peers = [c for c in cases if c.swept]
    assert len(peers) == 5 * 2 and {dict(c.swept)["iterations"] for c in peers} == {5, 15}
    assert {c.impl for c in peers} == {"implicit", "lenskit", "torch"} and not any(c.skip for c in peers)


def test_the_peers_grids_measure_each_library_at_two_iteration_counts(catalogue: grid.Catalogue) -> None:
    """Each (library, objective, rank) at two iteration counts (the peers table's slope); the high-rank grid
    is the full one's cases at rank 64 and 128, LensKit's slow explicit rank 128 left out."""
    full = grid.expand(catalogue, catalogue.grid("peers"), max_cores=2)
    high = grid.expand(catalogue, catalogue.grid("peers_high_rank"), max_cores=2)
    def counts(cases: list[grid.Case]) -> dict[tuple[str, str, object], set[object]]:
        out: dict[tuple[str, str, object], set[object]] = {}
        for case in cases:
            swept = dict(case.swept)
            out.setdefault((case.impl, case.data, swept["rank"]), set()).add(swept["iterations"])
        return out
    assert all(len(its) == 2 for its in counts(full).values()) and len(full) == 44
    assert counts(full)[("python", "positives:4:ml-20m", 64)] == {1, 2}  # minutes an MLlib iteration there
    assert {case.id for case in high} < {case.id for case in full}
    assert {dict(c.swept)["rank"] for c in high} == {64, 128} and ("lenskit", "ml-20m", 128) not in counts(high)


def test_the_rank_256_and_lambda_grids(catalogue: grid.Catalogue) -> None:
    """Rank 256 for the CG libraries only, at two iteration counts; the λ sweep runs implicit and torch
    at every λ with everything else held, so each library's best λ is read off one run."""
    top = grid.expand(catalogue, catalogue.grid("peers_rank_256"), max_cores=2)
    assert {dict(c.swept)["rank"] for c in top} == {256} and {dict(c.swept)["solver"] for c in top} == {"cg"}
    assert {c.impl for c in top} == {"implicit", "torch", "torch-spark"} and len(top) == 10
    sweep = grid.expand(catalogue, catalogue.grid("peers_lambda"), max_cores=2)
    by_impl: dict[str, set[object]] = {}
    for case in sweep:
        swept = dict(case.swept)
        assert (swept["rank"], swept["iterations"], swept["implicit"]) == (64, 5, True)
        by_impl.setdefault(case.impl, set()).add(swept["reg"])
    assert by_impl == {"implicit": {0.25, 1.0, 4.0, 16.0}, "torch": {0.25, 1.0, 4.0, 16.0}}


def test_a_selection_narrows_and_data_resolves(catalogue: grid.Catalogue) -> None:
    selection = Selection(impls=["scala"], apis=["rdd"], cores=[1])
    cases = grid.expand(catalogue, catalogue.grid("study"), 8, selection, lambda d: f"synthetic:{d}")
    assert cases and all(c.impl == "scala" and c.api == "rdd" and c.cores == 1 for c in cases)
    assert all(c.data.startswith("synthetic:ml-") for c in cases)


def test_bad_grid_files_name_the_file_and_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_text("[experiments.x]\nimpls = ['python']\n")
    with pytest.raises(grid.GridError, match=r"grid\.toml: experiment 'x' lacks \['apis'"):
        grid.load(path)
    path.write_text("[grids.g]\nexperiments.nope = {}\n")
    with pytest.raises(grid.GridError, match="unknown experiment 'nope'"):
        grid.load(path)
    path.write_text("[params]\nrnak = 3\n")
    with pytest.raises(grid.GridError, match=r"unknown keys \['rnak'\]"):
        grid.load(path)
    path.write_text("[params\n")
    with pytest.raises(grid.GridError, match=r"grid\.toml"):
        grid.load(path)
    with pytest.raises(grid.GridError, match="unknown grid 'nope'"):
        grid.load().grid("nope")


def test_gpu_cases_share_one_gpu_between_the_cores(catalogue: grid.Catalogue) -> None:
    gpu = catalogue.devices["gpu"]
    assert gpu.confs_for(4)["spark.task.resource.gpu.amount"] == "0.25"
    assert gpu.confs_for(1)["spark.task.resource.gpu.amount"] == "1"
    assert gpu.confs_for(2)["spark.plugins"] == "com.nvidia.spark.SQLPlugin"
    assert gpu.confs_for(2)["spark.rapids.sql.explain"] == "ALL"
    assert "spark.task.resource.gpu.amount" not in catalogue.devices["cpu"].confs_for(4)
    local = gpu.confs_for(2, local=True)  # local mode schedules no GPU resources: asking hangs
    assert not [k for k in local if ".resource." in k] and local["spark.plugins"]
    case = Case("ml-100k", "gpu", "python", "df", 2)
    with pytest.raises(runner.CaseFailed, match="spark-rapids jar"):
        runner.launch_for(case, runner.Target(), gpu)
    launch = runner.launch_for(case, runner.Target(master="yarn", rapids_jar="/x/rapids.jar"), gpu)
    cmd = spark_submit(launch, ["app.py"], [])
    assert "/x/rapids.jar" in cmd and "spark.task.resource.gpu.amount=0.5" in cmd


@pytest.mark.parametrize(
    ("master", "expected"),
    [
        ("local", ["--master", "local[3]"]),
        ("spark://10.0.0.1:7077", ["--master", "spark://10.0.0.1:7077", "--executor-memory", "2g",
                                   "--total-executor-cores", "3"]),
        ("yarn", ["--master", "yarn", "--executor-memory", "2g", "--num-executors", "1",
                  "--executor-cores", "3"]),
    ],
)
def test_cores_become_the_masters_own_resource_options(master: str, expected: list[str]) -> None:
    assert resource_args(Launch(master=master, cores=3, executor_memory="2g")) == expected


def test_cores_past_a_node_spread_evenly_over_yarn_executors() -> None:
    assert resource_args(Launch(master="yarn", cores=32, executors=4)) == [
        "--master", "yarn", "--num-executors", "4", "--executor-cores", "8"]
    with pytest.raises(ValueError, match="12 cores do not spread evenly over 5 executors"):
        Launch(master="yarn", cores=12, executors=5)


def test_a_case_command_carries_every_shared_argument(catalogue: grid.Catalogue) -> None:
    case = Case("ml-100k", "cpu", "python", "rdd", 2)
    launch = runner.launch_for(case, runner.Target(), catalogue.devices["cpu"])
    cmd = runner.case_command(case, "/d/ratings.csv", catalogue.params, launch)
    assert cmd[0].endswith("spark-submit") and "local[2]" in cmd
    assert cmd[cmd.index("--iterations") + 1] == "15" and cmd[cmd.index("--reg") + 1] == "0.01"
    assert "spark.sql.shuffle.partitions=4" in cmd and "spark.driver.host=127.0.0.1" in cmd
    assert cmd[cmd.index("--data") + 1] == "ml-100k"
    scala = runner.case_command(Case("ml-100k", "cpu", "scala", "df", 2), "/d/r.csv", catalogue.params, launch)
    assert scala[scala.index("--class") + 1] == "als.RecommenderScala"
    shared = cmd[cmd.index("/d/ratings.csv") + 1 : cmd.index("--impl")]
    assert scala[scala.index("/d/r.csv") + 1:] == [a if a != "rdd" else "df" for a in shared]
    assert cmd[cmd.index("--impl") + 1] == "python"


def test_a_case_over_its_experiments_budget_is_skipped_with_the_reason(catalogue: grid.Catalogue) -> None:
    scale = catalogue.grid("scale")
    sizes = {name: 2_000_000 * (n + 1) ** 3 for n, name in enumerate(scale.experiments["scale"]["data"])}
    cases = grid.expand(catalogue, scale, 2, data_size=sizes.get)
    for case in cases:
        budget = catalogue.budgets["scale"].get(f"{case.impl}-{case.api}")
        over = budget is not None and sizes[case.data] > budget.ratings
        assert (case.skip is not None) == over, case
        assert not over or (budget is not None and case.skip is not None and budget.reason in case.skip)
    assert any(c.skip for c in cases) and any(not c.skip for c in cases)
    assert all(c.skip is None for c in grid.expand(catalogue, scale, 2))  # sizes unknown: nothing skipped


def test_grids_carry_the_recommend_phase(catalogue: grid.Catalogue) -> None:
    """Every grid but the study's runs top 10 (each library's own, rated items included) where an
    implementation recommends (every one does)."""
    assert catalogue.grid("study").top_k == 0
    for name in ("gpu", "engines", "local", "smoke", "scale", "scale_quick"):
        assert (catalogue.grid(name).top_k, catalogue.grid(name).include_rated) == (10, True), name
    launch = Launch(master="local[2]")
    cmd = runner.case_command(Case("ml-100k", "cpu", "scala", "df", 2), "/d/r.csv", catalogue.params, launch, 10, True)
    assert cmd[cmd.index("--top-k") + 1] == "10" and "--include-rated" in cmd
    torch_spark = Case("ml-100k", "cpu", "torch-spark", "df", 2)
    in_stage = runner.case_command(torch_spark, "/d/r.csv", catalogue.params, launch, 10)
    assert in_stage[in_stage.index("--top-k") + 1] == "10"


SWEEP_FILE = """
[params]
rank = 8
iterations = 15

[experiments.x]
impls = ["python", "torch"]
apis = ["df", "none"]
devices = ["cpu"]
cores = [2]
data = ["ml-100k"]
params = { implicit = [false, true], rank = [10, 64] }

[experiments.plain]
impls = ["torch"]
apis = ["none"]
devices = ["cpu"]
cores = [2]
data = ["ml-100k"]

[grids.all]
params = { rank = 5, iterations = 10 }
experiments.x = {}

[grids.narrow]
experiments.x = { params = { rank = [10], solver = ["cholesky", "cg"] } }

[grids.both]
params = { rank = 10 }
experiments.plain = {}
experiments.x = { params = { implicit = [false] } }

[devices.cpu]
"""


def sweep_catalogue(tmp_path: Path, text: str = SWEEP_FILE) -> grid.Catalogue:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return grid.load(path)


def test_a_sweep_expands_into_one_case_per_combination_named_by_its_values(tmp_path: Path) -> None:
    """[params], then the grid's `params`, then the experiment's swept values."""
    catalogue = sweep_catalogue(tmp_path)
    chosen = catalogue.grid("all")
    cases = grid.expand(catalogue, chosen, max_cores=2)
    assert [c.id for c in cases] == [
        f"{impl}-{api}-cpu-2c-ml-100k,rank={rank},implicit={implicit}"
        for impl, api in (("python", "df"), ("torch", "none")) for rank in (10, 64) for implicit in ("false", "true")]
    assert cases[1].variant == "rank=10 implicit=true" and cases[1].swept == (("rank", 10), ("implicit", True))
    params = cases[3].als_params(chosen.params)
    assert (params.rank, params.implicit, params.iterations) == (64, True, 10)  # the sweep over the grid's rank 5
    assert all(grid.Case.parse(c.id) == c for c in cases)
    plain = Case("fractal:ml-100k:8x8", "cpu", "torch", "none", 2)
    assert grid.Case.parse(plain.id) == plain and plain.variant == ""
    assert plain.als_params(chosen.params) is chosen.params
    with pytest.raises(grid.GridError, match="rank must be int"):
        grid.Case.parse("torch-none-cpu-2c-ml-100k,rank=ten")


def test_a_grid_narrows_a_sweep_and_the_command_line_filters_by_value(tmp_path: Path) -> None:
    catalogue = sweep_catalogue(tmp_path)
    narrow = grid.expand(catalogue, catalogue.grid("narrow"), max_cores=2)
    assert {c.variant for c in narrow} == {f"rank=10 implicit={i} solver={s}"
                                           for i in ("false", "true") for s in ("cholesky", "cg")}
    # MLlib solves by Cholesky only: its cg cases are skipped with the reason, the torch ones run.
    skipped = {c.id: c.skip for c in narrow if c.skip}
    assert set(skipped) == {f"python-df-cpu-2c-ml-100k,rank=10,implicit={i},solver=cg" for i in ("false", "true")}
    assert all(s == "the python implementation solves by cholesky only, not cg" for s in skipped.values())
    selection = Selection(params=dict([grid.parse_param_option("rank=64"), grid.parse_param_option("implicit=true")]))
    kept = grid.expand(catalogue, catalogue.grid("all"), 2, selection)
    assert [c.id for c in kept] == ["python-df-cpu-2c-ml-100k,rank=64,implicit=true",
                                    "torch-none-cpu-2c-ml-100k,rank=64,implicit=true"]
    # The filter reads the parameters a case runs, swept or not: the grid's rank 5 is no 64.
    assert grid.expand(catalogue, catalogue.grid("all"), 2, Selection(params={"rank": [5]})) == []
    assert grid.parse_param_option("reg=0, 0.1") == ("reg", [0.0, 0.1])
    for bad, message in (("rank", "expected KEY=VALUE"), ("rnak=3", "unknown parameter 'rnak'"),
                         ("implicit=yes", "implicit must be true or false"), ("solver=lu", "solver must be one of")):
        with pytest.raises(ValueError, match=message):
            grid.parse_param_option(bad)


def test_two_experiments_running_the_same_parameters_are_one_case(tmp_path: Path) -> None:
    catalogue = sweep_catalogue(tmp_path)
    cases = grid.expand(catalogue, catalogue.grid("both"), max_cores=2)
    torch = [c for c in cases if c.impl == "torch"]
    # `plain` runs the grid's rank 10, explicit: the same run as x's rank=10 implicit=false, named as the first.
    assert [c.id for c in torch] == ["torch-none-cpu-2c-ml-100k", "torch-none-cpu-2c-ml-100k,rank=64,implicit=false"]


@pytest.mark.parametrize(("sweep", "message"), [
    ("params = { rnak = [3] }", r"experiment 'x' params has unknown keys \['rnak'\]"),
    ("params = { rank = 10 }", "experiment 'x' params: rank must be a non-empty list of values, not 10"),
    ("params = { rank = [] }", "rank must be a non-empty list"),
    ("params = { rank = ['ten'] }", "experiment 'x' params: rank must be int, not 'ten'"),
    ("params = { rank = [true] }", "rank must be int, not True"),
    ("params = { implicit = [1] }", "implicit must be bool, not 1"),
    ("params = { solver = ['lu'] }", "solver must be one of cholesky, cg, not 'lu'"),
    ("params = { rank = [0] }", "rank and iterations must be at least 1"),
    ("params = [1, 2]", "experiment 'x' params must be a table of lists"),
])
def test_bad_sweeps_name_the_file_and_the_key(tmp_path: Path, sweep: str, message: str) -> None:
    text = SWEEP_FILE.replace("params = { implicit = [false, true], rank = [10, 64] }", sweep)
    with pytest.raises(grid.GridError, match=message) as error:
        sweep_catalogue(tmp_path, text)
    assert str(error.value).startswith(f"{tmp_path / 'grid.toml'}: ")


def test_bad_grid_narrowings_and_params_name_the_file_and_the_key(tmp_path: Path) -> None:
    narrowed = SWEEP_FILE.replace("solver = [", "sovler = [")
    with pytest.raises(grid.GridError, match=r"grid 'narrow' experiment 'x' params has unknown keys \['sovler'\]"):
        sweep_catalogue(tmp_path, narrowed)
    with pytest.raises(grid.GridError, match="grid 'all' params: reg must be float, not 'a lot'"):
        sweep_catalogue(tmp_path, SWEEP_FILE.replace("rank = 5, iterations", "reg = 'a lot', iterations"))
    with pytest.raises(grid.GridError, match=r"\[params\]: iterations must be int, not 1.5"):
        sweep_catalogue(tmp_path, SWEEP_FILE.replace("iterations = 15", "iterations = 1.5"))


def test_the_implicit_experiment_and_its_grids(catalogue: grid.Catalogue) -> None:
    """Every implementation and API but the peers', explicit and implicit, ranks 10 and 64, with a holdout and
    the recommend phase leaving rated items out; smoke runs one implicit torch case, local none."""
    implicit = grid.expand(catalogue, catalogue.grid("implicit"), max_cores=2)
    pairs = {(c.impl, c.api) for c in implicit}
    assert pairs == {(i.name, api) for i in registry.IMPLEMENTATIONS if not i.peer for api in i.apis}
    assert len(implicit) == len(pairs) * 4 and {c.data for c in implicit} == {"ml-100k"}
    assert {c.variant for c in implicit} == {f"rank={r} holdout=0.2 implicit={i}"
                                             for r in (10, 64) for i in ("false", "true")}
    assert len({c.id for c in implicit}) == len(implicit) and not any(c.skip for c in implicit)
    for name in ("implicit", "implicit_20m"):
        chosen = catalogue.grid(name)
        assert (chosen.top_k, chosen.include_rated, chosen.params.iterations) == (10, False, 10), name
    assert {c.data for c in grid.expand(catalogue, catalogue.grid("implicit_20m"), 2)} == {"ml-20m"}
    smoke = [c for c in grid.expand(catalogue, catalogue.grid("smoke"), max_cores=2) if c.swept]
    assert [c.id for c in smoke] == ["torch-none-cpu-2c-ml-100k,rank=10,holdout=0.2,implicit=true"]
    local = grid.expand(catalogue, catalogue.grid("local"), max_cores=2)
    assert all("iterations" in dict(c.swept) for c in local if c.swept)  # the peers' cases, none of implicit's
    case = next(c for c in implicit if c.impl == "scala" and c.variant == "rank=64 holdout=0.2 implicit=true")
    launch = Launch(master="local[2]")
    cmd = runner.case_command(case, "/d/r.csv", catalogue.grid("implicit").params, launch, 10, False)
    assert cmd[cmd.index("--rank") + 1] == "64" and "--implicit" in cmd and "--include-rated" not in cmd
    assert cmd[cmd.index("--holdout") + 1] == "0.2" and cmd[cmd.index("--iterations") + 1] == "10"
    info = runner.extra_info(case, [runner.CaseRun(_result(case), 1.0, [])], cmd, launch)
    assert info["case"]["swept"] == {"rank": 64, "holdout": 0.2, "implicit": True}


def _result(case: Case) -> dict:
    from dataclasses import asdict

    from recommender.result import Counts, Metrics, RunResult, Runtime, SparkRuntime

    return asdict(RunResult(case.impl, case.api, case.data, "/d/r.csv", 1, {}, Counts(1, 0, 1, 1, 1, 0, 1, 0),
                            Metrics(0.5), {"total": 1.0}, Runtime(SparkRuntime("4", "local[2]", "a", 2)), ""))


def test_the_param_option_is_a_usage_error_when_malformed() -> None:
    import argparse

    from experiments.pytest_plugin import _param_option

    assert _param_option("rank=10,64") == ("rank", [10, 64])
    with pytest.raises(argparse.ArgumentTypeError, match="rank must be int, not 'x'"):
        _param_option("rank=x")


def test_a_grid_that_needs_more_memory_than_the_machine_has_is_refused() -> None:
    from experiments.__main__ import check_grid

    needs = grid.load().grid("billion_local").memory
    assert needs is not None
    with pytest.raises(grid.GridError, match=rf"grid 'billion_local' needs {needs.gib:g} GiB of memory \(torch's peak"
                                             r".*\), and this machine has 8 GiB"):
        check_grid("billion_local", [], memory_gib=8)
    check_grid("billion_local", [], memory_gib=needs.gib)  # no error: just enough


def test_the_billion_on_one_machine_runs_torch_and_says_why_not_torch_spark() -> None:
    catalogue = grid.load()
    chosen = catalogue.grid("billion_local")
    cases = grid.expand(catalogue, chosen, 2, data_size=lambda name: 1_158_559_241)
    ran = {(case.impl, case.api): case.skip for case in cases}
    assert set(ran) == {("torch", "none"), ("torch-spark", "df")}
    assert ran[("torch", "none")] is None and (chosen.params.rank, chosen.params.iterations) == (10, 10)
    assert "two barrier tasks" in (ran[("torch-spark", "df")] or "")


def test_a_grid_memory_needs_its_amount_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_text('''[experiments.e]
impls = ["torch"]
apis = ["none"]
devices = ["cpu"]
cores = ["all"]
data = ["ml-100k"]

[grids.g]
memory = { gib = 4 }
experiments.e = {}
''')
    with pytest.raises(grid.GridError, match=r"grid 'g' memory must be \{ gib = N, reason"):
        grid.load(path)
