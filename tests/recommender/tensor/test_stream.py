"""The torch engine's streamed Parquet build (recommender/tensor/stream.py): the sides it scatters a batch at a
time are `als.make_side`'s of the whole arrays, codes and column blocks included, and the engine's figures on a
streamed table are those on the same ratings read whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.formats import BadInputError
from recommender.data.readers import write_parquet, write_study_csv
from recommender.params import ALSParams
from tests.engines import run_engine

torch = pytest.importorskip("torch", reason="the PyTorch engine needs torch: pip install -r requirements-torch.txt")

from recommender.tensor import als, stream  # noqa: E402

pytestmark = pytest.mark.unit


def table(tmp_path: Path, signed: bool, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """Ratings on sparse raw ids (not 0..n-1), shuffled, in several row groups: half stars, or signed floats."""
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((70, 90)) < 0.5)
    order = rng.permutation(len(users))
    ratings = rng.normal(0, 2, len(users)) if signed else rng.integers(1, 11, len(users)) * 0.5
    frame = pd.DataFrame({USER: (users[order] * 3 + 1).astype(np.int32), ITEM: (items[order] * 2).astype(np.int32),
                          RATING: ratings[order].astype(np.float32)})
    path = tmp_path / "ratings.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=300)
    return path, frame


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("holdout", [0.0, 0.25])
def test_the_streamed_sides_are_the_sides_of_the_whole_arrays(tmp_path: Path, signed: bool, holdout: float,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "BATCH_ROWS", 200)  # many batches, each scattered after the ones before
    monkeypatch.setattr(als, "GRAM_BLOCK_BYTES", 4096)  # column blocks on both sides
    path, frame = table(tmp_path, signed)
    source = stream.streamable(str(path))
    assert source is not None
    split = stream.Split(holdout, 7)
    built = stream.Streamed(source, split, stream.read(source, split))
    by_user, by_item = built.sides(8, torch.device("cpu"))
    assert by_user.blocks > 1 and by_item.blocks > 1
    training = split.training(frame[USER].to_numpy(), frame[ITEM].to_numpy())
    kept = frame if training is None else frame[training]
    assert 0 < len(kept) == len(by_user.ratings) and (holdout == 0) == (len(kept) == len(frame))
    users = np.searchsorted(np.unique(kept[USER]), kept[USER]).astype(np.int32)
    items = np.searchsorted(np.unique(kept[ITEM]), kept[ITEM]).astype(np.int32)
    ratings = als.encode(torch.from_numpy(kept[RATING].to_numpy()))
    assert by_user.ratings.step == ratings.step == (None if signed else 0.5)
    for side, rows, cols, n_rows, n_cols in ((by_user, users, items, built.n_users, built.n_items),
                                            (by_item, items, users, built.n_items, built.n_users)):
        whole = als.make_side(torch.from_numpy(rows), torch.from_numpy(cols), ratings, n_rows, n_cols, side.blocks)
        assert torch.equal(side.crow, whole.crow) and torch.equal(side.cols, whole.cols)
        assert torch.equal(side.ratings.stored, whole.ratings.stored) and side.n_cols == whole.n_cols
        assert torch.equal(side.counts, whole.counts) and torch.equal(side.positives, whole.positives)
        assert side.all_positive == whole.all_positive == (not signed)


@pytest.mark.parametrize("implicit", [False, True])
def test_the_engine_on_a_streamed_table_measures_what_it_measures_on_the_text(tmp_path: Path, implicit: bool) -> None:
    path, frame = table(tmp_path, signed=False, seed=3)
    write_study_csv(frame, tmp_path / "ratings.csv")
    params = ALSParams(rank=4, iterations=3, holdout=0.2, implicit=implicit, alpha=2.0)
    streamed, whole = (run_engine("torch", p, params=params, top_k=5) for p in (path, tmp_path / "ratings.csv"))
    assert streamed.counts == whole.counts
    assert streamed.metrics.train_mse == pytest.approx(whole.metrics.train_mse, rel=1e-5)
    assert streamed.metrics.holdout_rmse == pytest.approx(whole.metrics.holdout_rmse, rel=1e-5)
    assert streamed.metrics.ranking is not None and whole.metrics.ranking is not None
    assert streamed.metrics.ranking.ndcg == pytest.approx(whole.metrics.ranking.ndcg, abs=1e-6)


def test_a_test_file_is_the_holdout_of_a_streamed_table(tmp_path: Path) -> None:
    path, frame = table(tmp_path, signed=False, seed=5)
    test = pd.DataFrame({USER: np.array([1, 4, 10**6], np.int32), ITEM: np.array([0, 2, 4], np.int32),
                         RATING: np.array([4.0, 2.0, 3.0], np.float32)})  # user 10**6 is new: cold start
    write_parquet(test, tmp_path / "test.parquet")
    result = run_engine("torch", path, params=ALSParams(rank=3, iterations=2), test=str(tmp_path / "test.parquet"))
    assert (result.counts.train, result.counts.holdout, result.counts.holdout_predictions) == (len(frame), 3, 2)
    assert result.counts.ratings == len(frame) + 3 and result.counts.users == frame[USER].nunique() + 1


def test_ids_past_the_lookup_tables_range_read_the_table_whole(tmp_path: Path) -> None:
    frame = pd.DataFrame({USER: np.array([1, stream.MAX_TABLE_ID + 5, 1], np.int32),
                          ITEM: np.array([1, 2, 2], np.int32), RATING: np.array([4.0, 5.0, 3.0], np.float32)})
    write_parquet(frame, tmp_path / "wide.parquet")
    assert stream.streamable(str(tmp_path / "wide.parquet")) is None
    result = run_engine("torch", tmp_path / "wide.parquet", params=ALSParams(rank=2, iterations=1, holdout=0.0))
    assert (result.counts.train, result.counts.users) == (3, 2)


@pytest.mark.parametrize(("column", "values", "problem"), [
    (USER, pa.array([1, -2], pa.int32()), "ids must be non-negative 32-bit integers"),
    (RATING, pa.array([1.0, float("nan")], pa.float32()), r"ratings must be finite numbers"),
])
def test_a_bad_value_in_a_streamed_table_is_refused_naming_the_file(tmp_path: Path, column: str, values: pa.Array,
                                                                    problem: str) -> None:
    columns = {USER: pa.array([1, 2], pa.int32()), ITEM: pa.array([3, 4], pa.int32()),
               RATING: pa.array([4.0, 5.0], pa.float32())}
    pq.write_table(pa.table(columns | {column: values}), tmp_path / "bad.parquet")
    assert stream.streamable(str(tmp_path / "bad.parquet")) is not None
    with pytest.raises(BadInputError, match=rf"bad\.parquet.*{problem}"):
        run_engine("torch", tmp_path / "bad.parquet", params=ALSParams(rank=2, iterations=1))
