"""The compare script: tables, ratios, plots and bad input, on results built like the grid's."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest
from PIL import Image

from experiments import compare, plots, results, runner, tables
from experiments.grid import Case
from recommender.launch.submit import Launch
from recommender.result import Counts, Metrics, RunResult, Runtime, SparkRuntime

pytestmark = pytest.mark.unit


def result_line(case: Case, seconds: float, mse: float = 0.6) -> dict:
    """A result line as an implementation prints it, with phases adding up to 80% of `seconds`."""
    phases = {"load": 0.1 * seconds, "fit": 0.3 * seconds, "predict": 0.3 * seconds,
              "evaluate": 0.1 * seconds}
    run = RunResult(
        impl=case.impl, api=case.api, data=case.data, input="/c/prepared/x/ratings.csv",
        input_bytes=2_000_000, params={"rank": 8, "iterations": 10}, counts=Counts(100_000, 0, 943, 1682, 100_000, 0,
                                                                  100_000, 0),
        metrics=Metrics(mse), phases=phases | {"total": sum(phases.values())},
        runtime=Runtime(spark=SparkRuntime("4.1.1", f"local[{case.cores}]", "local-1", case.cores)), started_at="",
    )
    return asdict(run)


EXPLAIN = [  # spark-rapids' documented explain format (see tests/experiments/test_rapids_explain.py)
    "ALS_PHASE load begin",
    "*Exec <FileSourceScanExec> will run on GPU",
    "ALS_PHASE predict begin",
    "!Exec <ProjectExec> cannot run on GPU because not all expressions can be replaced",
]


def write_results(path: Path, times: dict[Case, list[float]], label: str | None = "box") -> Path:
    """A pytest-benchmark file with the grid's extra_info, as the grid test writes it."""
    benchmarks = []
    for case, rounds in times.items():
        explain = EXPLAIN if case.device == "gpu" else []
        runs = [runner.CaseRun(result_line(case, t), t, explain) for t in rounds]
        launch = Launch(master="local", cores=case.cores, confs={"spark.sql.shuffle.partitions": "4"})
        mean = sum(rounds) / len(rounds)
        benchmarks.append({
            "group": case.data, "name": f"test_case[{case.id}]", "fullname": case.id,
            "params": {"impl": case.impl}, "extra_info": runner.extra_info(case, runs, ["spark-submit", "x"], launch),
            "stats": {"min": min(rounds), "max": max(rounds), "mean": mean, "stddev": 0.0,
                      "rounds": len(rounds), "median": mean, "ops": 1 / mean},
        })
    machine = {"node": "n1", "als": {"label": label, "cpu_model": "cpu", "gpus": []} if label else {}}
    path.write_text(json.dumps({"machine_info": machine, "benchmarks": benchmarks,
                                "datetime": "2026-11-24T10:00:00", "version": "5.2.3"}))
    return path


SWEEP = {
    Case("ml-100k", "cpu", "python", "rdd", 1): [100.0, 102.0],
    Case("ml-100k", "cpu", "python", "rdd", 2): [60.0],
    Case("ml-100k", "cpu", "scala", "rdd", 1): [50.0],
    Case("ml-100k", "cpu", "scala", "rdd", 2): [30.0],
    Case("ml-100k", "cpu", "python", "df", 2): [20.0],
    Case("ml-1m", "cpu", "python", "df", 2): [40.0],
    Case("ml-1m", "gpu", "python", "df", 2): [32.0],
}


def test_study_tables_speedup_and_ratios(tmp_path: Path) -> None:
    frame, _ = results.load([write_results(tmp_path / "a.json", SWEEP)])
    study = tables.study_tables(frame)
    python = study[("box", "python", "cpu")]
    rdd2 = python[(python.api == "rdd") & (python.cores == 2)].iloc[0]
    assert rdd2["speedup vs 1 core"] == pytest.approx(101.0 / 60.0)
    assert rdd2["time (s)"] == 60.0 and rdd2["MSE"] == 0.6
    language = tables.ratio(frame, "impl", "python", "scala")
    assert sorted(language["python/scala"]) == pytest.approx([2.0, 101.0 / 50.0])
    api = tables.ratio(frame, "api", "rdd", "df")
    assert list(api["rdd/df"]) == [3.0]
    assert list(tables.ratio(frame, "device", "cpu", "gpu")["cpu/gpu"]) == [1.25]
    gpu = tables.gpu_operators(frame)
    assert list(gpu.phase) == ["load", "predict"]
    assert list(gpu["on GPU"]) == ["FileSourceScanExec", ""]
    assert list(gpu["on CPU (why)"]) == ["", "ProjectExec (not all expressions can be replaced)"]
    throughput = tables.throughput(frame)
    big = throughput[throughput.data == "ml-1m"].iloc[0]
    assert big["ratings/s"] == pytest.approx(100_000 / 40.0) and big["MB/s"] == pytest.approx(2 / 40.0)
    assert big["fit s/iteration"] == pytest.approx(0.3 * 40.0 / 10)  # fit is 30% of each run, 10 iterations
    phases = tables.phases(frame)
    row = phases[(phases.impl == "scala") & (phases.cores == 2)].iloc[0]
    assert row["fit (s)"] == pytest.approx(9.0) and row["startup+other (s)"] == pytest.approx(6.0)


def test_files_from_two_machines_stay_apart(tmp_path: Path) -> None:
    a = write_results(tmp_path / "a.json", SWEEP, label="laptop")
    b = write_results(tmp_path / "b.json", {k: [t / 4 for t in v] for k, v in SWEEP.items()}, label="emr")
    frame, sources = results.load([a, b])
    assert [s.label for s in sources] == ["laptop", "emr"]
    assert len(frame) == 2 * len(SWEEP)
    speed = tables.study_tables(frame)
    assert speed[("emr", "python", "cpu")]["time (s)"].iloc[0] == pytest.approx(
        speed[("laptop", "python", "cpu")]["time (s)"].iloc[0] / 4)
    same = results.load([a, write_results(tmp_path / "c.json", SWEEP, label="laptop")])[1]
    assert [s.label for s in same] == ["laptop [a.json]", "laptop [c.json]"]


def test_report_and_plots_are_written(tmp_path: Path) -> None:
    out = tmp_path / "report"
    rc = compare.main([str(write_results(tmp_path / "a.json", SWEEP)), "--out", str(out)])
    assert rc == 0
    text = (out / "report.md").read_text()
    assert "### python · cpu · box" in text and "Scala over Python 2.01×" in text
    assert "speedup vs 1 core" in text and "`spark-submit x`" in text
    assert "DataFrame over RDD 3.00×" in text and "GPU over CPU 1.25×" in text
    assert "ProjectExec (not all expressions can be replaced)" in text
    for name in ("runtime_vs_cores", "speedup_vs_cores", "throughput_vs_size", "phases"):
        png = out / f"{name}.png"
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.format == "PNG" and image.size == plots.SIZE_PX
            assert len(set(image.convert("L").getdata())) > 10, f"{name}.png is blank"
        assert f"]({name}.png)" in text
    for name in ("cases", "throughput", "scala_over_python", "phases"):
        assert (out / f"{name}.csv").stat().st_size > 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "is empty"),
        ("{not json", "is not valid JSON (line 1, column 2"),
        ('{"rows": []}', "is not a pytest-benchmark JSON file"),
        ('{"machine_info": {}, "benchmarks": []}', "has no benchmark cases"),
        ('{"machine_info": {}, "benchmarks": [{"name": "test_x", "stats": {}}]}',
         "case test_x has no ALS result"),
    ],
)
def test_bad_results_files_are_named(tmp_path: Path, content: str, problem: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(results.ResultsFileError) as error:
        results.load([path])
    assert str(error.value).startswith(f"{path}: ") and problem in str(error.value)
    assert compare.main([str(path), "--out", str(tmp_path / "r")]) == 2
    assert f"error: {path}: " in capsys.readouterr().err


def test_commands_are_shortened_for_reading() -> None:
    cmd = "/v/lib/pyspark/bin/spark-submit --master local[2] /w/main/recommender/entry.py " \
          "/home/u/.cache/als-benchmark/prepared/ml-100k/ratings.csv --api rdd"
    assert compare.short_command(cmd) == ("spark-submit --master local[2] recommender/entry.py "
                                          "$CACHE/prepared/ml-100k/ratings.csv --api rdd")


def test_recommend_phase_and_ranking_tables(tmp_path: Path) -> None:
    """Cases with the recommend phase: its seconds and users/s, and a ranking table per data set
    with the most-popular baseline as its own row; a case without the phase stays out of both."""
    from dataclasses import replace

    from recommender.result import Ranking, Recommended

    cases = {Case("ml-100k", "cpu", "python", "df", 2): [20.0], Case("ml-100k", "cpu", "torch", "none", 2): [4.0],
             Case("ml-100k", "cpu", "python", "rdd", 2): [30.0]}
    path = write_results(tmp_path / "r.json", cases)
    data = json.loads(path.read_text())
    for bench in data["benchmarks"][:2]:
        extra = bench["extra_info"]
        extra["result"]["phases"]["recommend"] = 2.0
        extra["rounds"][0]["phases"]["recommend"] = 2.0
        extra["result"]["recommended"] = asdict(Recommended(10, 943, True))
        extra["result"]["metrics"] = asdict(replace(
            Metrics(0.6, 0.92, 0.73), ranking=Ranking(10, 940, 0.03, 0.02, 0.03, 0.01),
            baseline=Ranking(10, 940, 0.19, 0.11, 0.22, 0.11)))
    path.write_text(json.dumps(data))
    frame, _ = results.load([path])
    rec = tables.recommend(frame)
    assert len(rec) == 2 and set(rec["users/s"]) == {943 / 2.0}
    ranked = tables.ranking(frame)
    assert list(ranked.model) == ["ALS python/df/cpu", "ALS torch/none/cpu", "most popular (baseline)"]
    assert list(ranked.precision) == [0.03, 0.03, 0.19] and ranked.MAE.iloc[0] == 0.73
    assert "recommend (s)" in tables.phases(frame)
    out = tmp_path / "report"
    assert compare.main([str(path), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## Ranking on the holdout, against the most-popular baseline" in text
    assert "| most popular (baseline) |" in text and "0.1900" in text


def test_cases_run_on_a_busy_machine_are_flagged_in_the_headline(tmp_path: Path) -> None:
    from experiments.environment import LoadSample, machine_load

    path = write_results(tmp_path / "a.json", SWEEP)
    document = json.loads(path.read_text())
    quiet = machine_load(LoadSample(0.2, 0.0, 0.0), LoadSample(2.1, 118.0, 60.0), cores=2, cpus=2)
    loaded = machine_load(LoadSample(5.7, 0.0, 0.0), LoadSample(8.9, 90.0, 60.0), cores=2, cpus=2)
    assert not quiet.busy and loaded.busy and loaded.others == pytest.approx(7.4)
    for n, bench in enumerate(document["benchmarks"]):
        bench["extra_info"]["machine_load"] = (loaded if n < 2 else quiet).as_dict()
    path.write_text(json.dumps(document))
    out = tmp_path / "report"
    assert compare.main([str(path), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "**2 of 7 cases ran on a busy machine**" in text
    busy = tables.busy(results.load([path])[0])
    assert list(busy.cores) == [1, 2] and list(busy["others' load"]) == [7.4, 7.4]


def test_a_file_without_machine_info_is_reported(tmp_path: Path) -> None:
    path = write_results(tmp_path / "a.json", SWEEP)
    document = json.loads(path.read_text())
    document["machine_info"] = None
    path.write_text(json.dumps(document))
    assert compare.main([str(path), "--out", str(tmp_path / "report")]) == 0


class FakePytest:
    """A stand-in for the grid's pytest process: writes its --benchmark-json, with the sweep's cases or none."""

    def __init__(self, cases: bool, code: int) -> None:
        self.cases, self.code = cases, code

    def __call__(self, cmd: list[str], **_: object) -> FakePytest:
        target = next(a.split("=", 1)[1] for a in cmd if a.startswith("--benchmark-json="))
        write_results(Path(target), SWEEP if self.cases else {})
        return self

    def wait(self) -> int:
        return self.code


def test_an_interrupted_grid_leaves_no_empty_results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from experiments import __main__ as main_module

    monkeypatch.setattr(main_module.subprocess, "Popen", FakePytest(cases=False, code=2))
    code = main_module.main(["--results", str(tmp_path / "results"), "--out", str(tmp_path / "report")])
    assert code == 2 and list((tmp_path / "results").iterdir()) == []
    assert "no case finished" in capsys.readouterr().err


def test_a_grid_stopped_after_some_cases_keeps_and_reports_them(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments import __main__ as main_module

    monkeypatch.setattr(main_module.subprocess, "Popen", FakePytest(cases=True, code=2))
    code = main_module.main(["--results", str(tmp_path / "results"), "--out", str(tmp_path / "report")])
    kept = list((tmp_path / "results").iterdir())
    assert code == 2 and len(kept) == 1 and kept[0].suffix == ".json"  # the .part renamed into place
    assert (tmp_path / "report" / "report.md").exists()


def test_a_stop_signal_reaches_the_grid_as_ctrl_c_and_its_finished_cases_are_kept(tmp_path: Path) -> None:
    """SIGTERM to the main job becomes SIGINT to pytest, which then writes what finished (a stand-in here)."""
    import os
    import signal
    import sys
    import threading

    from experiments.__main__ import run_grid
    from experiments.interrupts import stop_signals_raise

    written = tmp_path / "written"
    child = ("import sys, time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n"
             "    open(sys.argv[1], 'w').write('finished cases'); sys.exit(2)")
    with stop_signals_raise():
        threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        code = run_grid([sys.executable, "-c", child, str(written)])
    assert code == 2 and written.read_text() == "finished cases"


def test_machine_load_is_sampled_around_work() -> None:
    import subprocess
    import sys

    from experiments.environment import machine_load, sample_load

    before = sample_load()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    load = machine_load(before, sample_load(), cores=1)
    assert load.cpu_s > 0.05 and load.wall_s >= load.cpu_s * 0.5 and load.cpus >= 1
    assert set(load.as_dict()) >= {"load_before", "load_after", "cpu_s", "wall_s", "others", "busy"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--grid", "nosuch"], "unknown grid 'nosuch'"),
    (["--grid", "billion"], "grid 'billion' is too large for one machine: run it on EMR"),
    (["--grid", "billion", "--", "--spark-master", "standalone"], "too large for one machine"),
])
def test_a_grid_this_machine_cannot_run_is_refused_before_pytest(
        argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from experiments import __main__ as main_module

    monkeypatch.setattr(main_module.subprocess, "run", lambda *a, **k: pytest.fail("pytest must not start"))
    assert main_module.main([*argv[:2], "--results", str(tmp_path), *argv[2:]]) == 2
    assert message in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_a_cluster_only_grid_runs_against_a_cluster_master() -> None:
    from experiments.__main__ import check_grid

    check_grid("billion", ["--spark-master", "spark://10.0.0.1:7077"])  # no error: the cluster holds it


def test_busy_is_judged_by_the_cpu_others_used_during_the_case() -> None:
    """A quiet case after a heavy job: the lagging load average says 5, /proc/stat says nobody else ran."""
    from experiments.environment import LoadSample, machine_load

    quiet = machine_load(LoadSample(6.0, 0.0, 0.0, 1000.0), LoadSample(5.0, 118.0, 60.0, 1120.0), cores=2, cpus=2)
    assert quiet.others == pytest.approx(2 / 60) and not quiet.busy
    shared = machine_load(LoadSample(0.1, 0.0, 0.0, 1000.0), LoadSample(0.9, 90.0, 60.0, 1150.0), cores=2, cpus=2)
    assert shared.others == pytest.approx(1.0) and shared.busy
    assert shared.as_dict()["machine_cpu_s"] == 150.0


def test_machine_cpu_time_is_read_from_proc_stat(tmp_path: Path) -> None:
    import os

    from experiments.environment import machine_cpu_seconds, sample_load

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 20 30 5000 70 4 6 10 0 0\ncpu0 50 10 15 2500 35 2 3 5 0 0\n")
    assert machine_cpu_seconds(stat) == pytest.approx(170 / os.sysconf("SC_CLK_TCK"))  # idle, iowait left out
    assert machine_cpu_seconds(tmp_path / "none") is None
    assert sample_load(tmp_path / "none").machine_cpu_s is None


def test_tree_watch_counts_a_grandchild_that_is_never_reaped_into_our_times() -> None:
    """Like Spark's Python workers: a grandchild burns a second of CPU and its parent never waits
    for it, so the time never reaches this process's children's times; the watch sees it."""
    import subprocess
    import sys

    from experiments.environment import TreeWatch

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"
    parent = (f"import os, subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {burn!r}])\n"
              "time.sleep(2.0)\nos._exit(0)")
    before = os.times()
    with subprocess.Popen([sys.executable, "-c", parent]) as child:
        watch = TreeWatch(child.pid, interval_s=0.05)
        child.wait()
    seen, after = watch.cpu_s(), os.times()
    reaped = after.children_user + after.children_system - before.children_user - before.children_system
    assert seen >= 0.9 > reaped


def ranked_results(path: Path, cases: dict[Case, tuple[float, float]], exclude_rated: bool = True) -> Path:
    """Cases with the recommend phase and ranking metrics: `(model NDCG@10, most-popular NDCG@10)` each,
    their result lines carrying the parameters each case ran (the grid's defaults, its swept values over them)."""
    from dataclasses import replace

    from recommender.params import ALSParams
    from recommender.result import Ranking, Recommended

    write_results(path, {case: [10.0] for case in cases})
    data = json.loads(path.read_text())
    for bench, (case, (ndcg, popular)) in zip(data["benchmarks"], cases.items(), strict=True):
        result = bench["extra_info"]["result"]
        result["params"] = asdict(case.als_params(ALSParams(holdout=0.2)))
        result["phases"]["recommend"] = bench["extra_info"]["rounds"][0]["phases"]["recommend"] = 1.0
        result["recommended"] = asdict(Recommended(10, 943, exclude_rated))
        result["metrics"] = asdict(replace(Metrics(0.6, 0.92, 0.73),
                                           ranking=Ranking(10, 940, ndcg / 2, 0.1, ndcg, 0.05),
                                           baseline=Ranking(10, 940, 0.1, 0.1, popular, 0.04)))
    path.write_text(json.dumps(data))
    return path


def swept(impl: str, api: str, rank: int, implicit: bool) -> Case:
    return Case("ml-100k", "cpu", impl, api, 2, swept=(("rank", rank), ("holdout", 0.2), ("implicit", implicit)))


OBJECTIVES = {
    swept("torch", "none", 10, False): (0.10, 0.20),
    swept("torch", "none", 10, True): (0.30, 0.20),
    swept("python", "df", 10, False): (0.12, 0.20),
    swept("python", "df", 10, True): (0.24, 0.20),
    swept("torch", "none", 64, False): (0.05, 0.20),
    swept("torch", "none", 64, True): (0.40, 0.20),
}


def test_explicit_against_implicit_and_most_popular(tmp_path: Path) -> None:
    """The ranking table per data set and rank, explicit beside implicit, the baseline's NDCG and the
    ratio to it; the headline's implicit-over-explicit NDCG is the geometric mean over matching pairs."""
    frame, _ = results.load([ranked_results(tmp_path / "r.json", OBJECTIVES)])
    table = tables.objectives(frame)
    assert list(zip(table["rank"], table["impl/api"], table.objective, strict=True)) == [
        (10, "python/df", "explicit"), (10, "python/df", "implicit (α 1)"), (10, "torch/none", "explicit"),
        (10, "torch/none", "implicit (α 1)"), (64, "torch/none", "explicit"), (64, "torch/none", "implicit (α 1)")]
    assert list(table["NDCG@k"]) == [0.12, 0.24, 0.10, 0.30, 0.05, 0.40]
    assert list(table["P@k"]) == [0.06, 0.12, 0.05, 0.15, 0.025, 0.2] and set(table["MAP@k"]) == {0.05}
    assert set(table["most popular NDCG@k"]) == {0.2} and table["NDCG / most popular"].iloc[3] == pytest.approx(1.5)
    pairs = tables.implicit_over_explicit(frame)
    assert sorted(pairs["implicit/explicit"]) == pytest.approx([2.0, 3.0, 8.0])
    # Swept cases keep apart wherever cases are keyed (the ratios' pivots): by their variant.
    assert not frame.duplicated(tables.CASE).any()
    assert frame.duplicated([key for key in tables.CASE if key != "variant"]).any()
    assert len(tables.study_tables(frame)[("box", "torch", "cpu")]) == 4
    out = tmp_path / "report"
    assert compare.main([str(tmp_path / "r.json"), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert f"implicit over explicit NDCG@10 {(2.0 * 3.0 * 8.0) ** (1 / 3):.2f}× on ml-100k" in text
    assert "## Explicit against implicit ALS and most popular (holdout, rated items left out)" in text
    assert "| variant " in text and "| rank=64 holdout=0.2 implicit=true " in text  # the study tables show them
    assert "](ndcg_by_objective.png)" in text and (out / "objectives.csv").stat().st_size > 0
    with Image.open(out / "ndcg_by_objective.png") as image:
        assert image.size == plots.SIZE_PX and len(set(image.convert("L").getdata())) > 10


def test_lists_holding_rated_items_stay_out_of_the_objectives_table(tmp_path: Path) -> None:
    frame, _ = results.load([ranked_results(tmp_path / "r.json", OBJECTIVES, exclude_rated=False)])
    assert tables.objectives(frame).empty and tables.implicit_over_explicit(frame).empty
    assert len(tables.ranking(frame)) == len(OBJECTIVES) + 1  # the general ranking table keeps them
    out = tmp_path / "report"
    assert compare.main([str(tmp_path / "r.json"), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "implicit over explicit" not in text and "ndcg_by_objective" not in text


def test_results_written_before_the_sweep_read_as_explicit_cholesky(tmp_path: Path) -> None:
    """Old files: no `swept` in the case, no implicit/solver in the result line's params."""
    path = write_results(tmp_path / "a.json", SWEEP)
    document = json.loads(path.read_text())
    for bench in document["benchmarks"]:
        del bench["extra_info"]["case"]["swept"]
    path.write_text(json.dumps(document))
    frame, _ = results.load([path])
    assert set(frame.variant) == {""} and not frame.implicit.any() and set(frame.solver) == {"cholesky"}
    assert set(frame["rank"]) == {8} and set(frame.alpha) == {1.0}
    out = tmp_path / "report"
    assert compare.main([str(path), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "variant" not in text and "Scala over Python 2.01×" in text  # no empty column, the ratios as before
    assert "variant" in (out / "cases.csv").read_text().splitlines()[0]
