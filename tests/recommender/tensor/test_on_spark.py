"""torch-spark's one barrier stage: the single-node model on 1, 2 and 4 tasks, its figures, its failures."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.data import parquet
from recommender.data.columns import ITEM, RATING, USER
from recommender.data.formats import STUDY_CSV
from recommender.data.readers import read_ratings
from recommender.data.sources import Prepared, prepare
from recommender.engine import Job
from recommender.params import ALSParams
from recommender.result import RunResult, parse_result_line
from recommender.split import holdout_hash, threshold
from tests.engines import run_engine

torch = pytest.importorskip("torch", reason="the PyTorch engines need torch: pip install -r requirements-torch.txt")
from recommender.ids import compact  # noqa: E402
from recommender.tensor import als as torch_als  # noqa: E402
from recommender.tensor import collective  # noqa: E402
from recommender.tensor.on_spark import driver, figures, routing, task  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.torch]
ROOT = Path(__file__).resolve().parents[3]
PARAMS = ALSParams(rank=10, iterations=10, reg=0.1, seed=42, holdout=0.2)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare("synthetic:ml-100k:7", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def csv(prepared: Prepared) -> str:
    return prepared.csv


@pytest.fixture(scope="module")
def single(csv: str) -> RunResult:
    return run_engine("torch", csv, params=PARAMS)


@pytest.fixture
def fail_hook(spark) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Sets the engine's failure hook (a Spark local property) for one test, then clears it."""
    sc = spark.sparkContext

    def arm(mode: str) -> None:
        sc.setLocalProperty(task.FAIL_PROPERTY, mode)

    yield arm
    sc.setLocalProperty(task.FAIL_PROPERTY, None)


def fit(spark, csv: str, blocks: int, wanted: task.Wanted | None = None,  # type: ignore[no-untyped-def]
        params: ALSParams = PARAMS) -> driver.Trained:
    src = routing.source(spark, Job("df", csv, "test", params))
    return driver.train(spark, src, params, blocks, wanted=wanted or task.Wanted())


@pytest.mark.parametrize(("blocks", "reader"), [(1, "text"), (2, "text"), (2, "pyarrow"), (2, "spark")])
def test_one_stage_fits_the_single_node_model(spark, prepared: Prepared, single, blocks: int,  # type: ignore[no-untyped-def]
                                              reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """From the text (`load_df`), or from the Parquet conversion read by pyarrow in the routing tasks,
    or by Spark's reader where pyarrow has no file system for the path."""
    if reader == "spark":
        monkeypatch.setattr(routing.parquet, "filesystem", lambda uri: None)
    assert prepared.parquet is not None
    trained = fit(spark, prepared.csv if reader == "text" else prepared.parquet, blocks)
    c = single.counts
    assert trained.counts == {"users": c.users, "items": c.items, "train": c.train, "holdout": c.holdout,
                              "holdout_predictions": c.holdout_predictions, "rows0": c.ratings, "bad0": 0,
                              "rows1": 0, "bad1": 0, "listed": trained.counts["listed"]}
    assert trained.sums["sq"] / c.train == pytest.approx(single.metrics.train_mse, rel=1e-5)
    rmse = (trained.sums["hsq"] / c.holdout_predictions) ** 0.5
    assert rmse == pytest.approx(single.metrics.holdout_rmse, rel=1e-5)
    tasks = trained.figures.tasks
    assert [t.task for t in tasks] == list(range(blocks)) and trained.figures.attempt == 0
    assert sum(t.rows for t in tasks) == 2 * (c.train + c.holdout)  # each rating by its user and by its item
    # The peak is the task's own (restarted at its start): on tiny data it may stay within pages already resident.
    assert all(t.peak_rss_bytes >= t.start_rss_bytes > 0 and t.held_bytes > 0 and t.tensor_bytes > 0 for t in tasks)
    assert trained.users is None and trained.items is None


def test_a_parquet_folder_is_read_by_row_groups_and_every_bad_row_counted(spark, prepared: Prepared,  # type: ignore[no-untyped-def]
                                                                          single, tmp_path: Path) -> None:
    """A folder of part files (as the fractal expansion writes) in many row groups, spread over the
    routing tasks: the same model; a bad row in the last part is counted, and nothing is fitted."""
    assert prepared.parquet is not None
    table = pq.read_table(prepared.parquet)
    folder = tmp_path / "parts.parquet"
    folder.mkdir()
    thirds = np.array_split(np.arange(table.num_rows), 3)
    for at, rows in enumerate(thirds):
        pq.write_table(table.take(rows), folder / f"part-{at}.parquet", row_group_size=7_000)
    assert len(parquet.row_groups(str(folder), parquet.open_ratings(str(folder), *parquet.filesystem(str(folder))))) > 6
    trained = fit(spark, str(folder), 2)
    assert trained.counts["train"] == single.counts.train and trained.counts["bad0"] == 0
    assert trained.sums["sq"] / single.counts.train == pytest.approx(single.metrics.train_mse, rel=1e-5)

    last = table.take(thirds[2]).to_pandas()
    last.loc[len(last) // 2, USER] = -1
    pq.write_table(pa.Table.from_pandas(last, schema=table.schema, preserve_index=False), folder / "part-2.parquet",
                   row_group_size=7_000)
    trained = fit(spark, str(folder), 2)
    assert (trained.counts["rows0"], trained.counts["bad0"]) == (table.num_rows - 1, 1)


def test_a_path_without_a_scheme_is_left_to_spark_where_it_means_hdfs(spark, prepared: Prepared,  # type: ignore[no-untyped-def]
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On YARN a path without a scheme is on HDFS, not the local disk pyarrow would read (Spark's
    reader is replaced here: it would look for the namenode)."""
    monkeypatch.setattr(routing, "read_parquet",
                        lambda spark, path: spark.createDataFrame([(1, 1, 1.0)], "user int, item int, rating float"))
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    job = Job("df", str(prepared.parquet), "test", PARAMS)
    assert isinstance(routing.source(spark, job).inputs[0], routing.RowGroups)
    conf.set("fs.defaultFS", "hdfs://namenode:8020")
    try:
        assert isinstance(routing.source(spark, job).inputs[0], routing.Rows)
    finally:
        conf.set("fs.defaultFS", "file:///")


def test_four_tasks_through_the_cli(csv: str, single) -> None:  # type: ignore[no-untyped-def]
    """Four barrier tasks need four slots, so this runs its own local[4] Spark."""
    command = [sys.executable, "-m", "recommender", "run", "--data", csv, "--impl", "torch-spark",
               "--master", "local[4]", "--blocks", "4", "--driver-memory", "1g", "--rank", str(PARAMS.rank),
               "--iterations", str(PARAMS.iterations), "--reg", str(PARAMS.reg), "--holdout", str(PARAMS.holdout)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = parse_result_line(done.stdout)
    assert result["params"]["blocks"] == 4 and result["counts"]["train"] == single.counts.train
    assert result["metrics"]["train_mse"] == pytest.approx(single.metrics.train_mse, rel=1e-5)
    assert set(result["phases"]) >= {"load", "fit", "predict", "evaluate"}
    assert result["resources"]["tasks"] == 4 and result["resources"]["peak_rss_bytes_max"] > 0


def single_node_model(csv: str, params: ALSParams) -> tuple[np.ndarray, np.ndarray, torch_als.Model]:
    """(user ids, item ids, the single-node solver's model) of `csv`'s training ratings under `params`."""
    read = read_ratings(csv, STUDY_CSV, False).frame
    users, items = read[USER].to_numpy(np.int64), read[ITEM].to_numpy(np.int64)
    train = holdout_hash(users, items, params.seed) >= threshold(params.holdout)
    user_ids, u = compact(users[train])
    item_ids, i = compact(items[train])
    model = torch_als.fit(torch.from_numpy(u), torch.from_numpy(i),
                          torch.from_numpy(read[RATING].to_numpy(np.float32)[train]),
                          len(user_ids), len(item_ids), params)
    return user_ids, item_ids, model


def test_factors_come_back_when_asked(spark, csv: str) -> None:  # type: ignore[no-untyped-def]
    trained = fit(spark, csv, 2, task.Wanted(factors=True))
    assert trained.users is not None and trained.items is not None
    user_ids, item_ids, model = single_node_model(csv, PARAMS)
    assert (trained.users[0] == user_ids).all() and (trained.items[0] == item_ids).all()
    np.testing.assert_allclose(trained.users[1], model.users.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(trained.items[1], model.items.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(("blocks", "solver"), [(1, "cholesky"), (2, "cholesky"), (2, "cg")])
def test_the_implicit_model_is_the_single_node_model(spark, csv: str, blocks: int, solver: str  # type: ignore[no-untyped-def]
                                                     ) -> None:
    """The Gram of the fixed side, all-reduced from each task's rows, and CG's warm starts give the
    single-node engine's implicit factors, and the errors are against the preferences."""
    params = replace(PARAMS, implicit=True, alpha=5.0, solver=solver)
    trained = fit(spark, csv, blocks, task.Wanted(factors=True), params)
    single = run_engine("torch", csv, params=params)
    _, _, model = single_node_model(csv, params)
    assert trained.users is not None and trained.items is not None
    atol = 1e-4 if solver == "cholesky" else 5e-4  # CG's few steps carry float32 rounding from step to step
    np.testing.assert_allclose(trained.users[1], model.users.numpy(), rtol=1e-3, atol=atol)
    np.testing.assert_allclose(trained.items[1], model.items.numpy(), rtol=1e-3, atol=atol)
    mse = trained.sums["sq"] / trained.counts["train"]
    assert mse == pytest.approx(single.metrics.train_mse, rel=1e-4)
    assert mse < 0.5  # against preferences of 1: the scale of ratings (1 to 5) would give far more


def test_more_tasks_than_slots_is_refused_up_front(spark, csv: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="only 2 task slots"):
        fit(spark, csv, 3)


def test_a_task_that_raises_fails_the_job_with_its_error(spark, csv: str, fail_hook) -> None:  # type: ignore[no-untyped-def]
    """Task 1 raises while task 0 waits for it in a collective: Spark kills task 0 and retries the
    stage, which fails the same way until Spark gives up, naming task 1's error; no timeout needed."""
    fail_hook("raise")
    start = time.perf_counter()
    with pytest.raises(Exception, match="torch-spark test hook: task 1 raises"):
        fit(spark, csv, 2)
    assert time.perf_counter() - start < collective.TIMEOUT.total_seconds()


def test_a_killed_worker_fails_the_stage_and_spark_retries_it(spark, csv: str, single, fail_hook,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    fail_hook(f"kill:{marker}")
    trained = fit(spark, csv, 2)
    assert marker.exists(), "the hook did not kill task 1"
    assert trained.figures.attempt == 1  # the whole stage ran again, task 0 too
    assert trained.sums["sq"] / single.counts.train == pytest.approx(single.metrics.train_mse, rel=1e-5)


@pytest.mark.parametrize("top", [1_000, 10**9])  # a lookup table, then a sparse id space's binary search
def test_positions_written_in_place_are_the_positions(top: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task, "IN_PLACE_BLOCK", 7)  # several blocks, the last one short
    rng = np.random.default_rng(4)
    ids = np.unique(rng.integers(0, top, 40)).astype(np.int32)
    values = rng.choice(ids, 100).astype(np.int32)
    expected = np.searchsorted(ids, values)
    assert np.array_equal(task._positions(ids, values), expected)
    assert task._positions(ids, values, out=values) is values
    assert np.array_equal(values, expected)


def test_a_task_peak_is_its_own_not_the_worker_lifetime() -> None:
    """After `_restart_peak_rss` the high-water mark counts from now: a reused worker's earlier peak
    (the routing pass's) is not the task's."""
    earlier = np.ones(64 << 20, np.uint8)  # 64 MiB touched, then freed: the worker's earlier peak
    del earlier
    figures.restart_peak_rss()
    start = figures.rss()
    assert figures.peak_rss(start) < start + (32 << 20)
    task = np.ones(48 << 20, np.uint8)  # the task's own 48 MiB
    assert figures.peak_rss(start) >= start + (40 << 20)
    del task
