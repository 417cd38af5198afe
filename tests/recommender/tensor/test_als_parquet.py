"""The single-node engine's Parquet input (`read_parquet_ratings`): the same ratings as written, in
int32/float32, and each bad table refused with a clear error naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.formats import BadInputError
from recommender.data.readers import read_any, read_parquet_ratings, write_parquet
from recommender.params import ALSParams

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("id_type", "rating_type"), [(np.int32, np.float32), (np.int64, np.float64)])
def test_a_table_reads_back_as_int32_ids_and_float32_ratings(tmp_path: Path, id_type: type, rating_type: type) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({USER: rng.integers(0, 2**31 - 1, 500).astype(id_type),
                          ITEM: rng.integers(0, 1000, 500).astype(id_type),
                          RATING: rng.uniform(0.5, 5, 500).astype(rating_type)})
    path = tmp_path / "ratings.parquet"
    write_parquet(frame, path)
    read = read_any(path).frame
    assert read.dtypes.tolist() == [np.int32, np.int32, np.float32]
    assert np.array_equal(read[USER], frame[USER]) and np.array_equal(read[ITEM], frame[ITEM])
    assert np.array_equal(read[RATING], frame[RATING].astype(np.float32))


@pytest.mark.parametrize(("column", "values", "problem"), [
    (USER, pa.array([1, -2], pa.int64()), "ids must be non-negative 32-bit integers"),
    (ITEM, pa.array([1, 2**31], pa.int64()), "ids must be non-negative 32-bit integers"),
    (USER, pa.array([1, None], pa.int32()), "ids must be non-negative 32-bit integers"),
    (USER, pa.array([1.0, 2.0], pa.float64()), "ids must be non-negative 32-bit integers"),
    (RATING, pa.array([1.0, float("nan")], pa.float32()), r"ratings must be finite numbers at most 1e\+18"),
    (RATING, pa.array([1.0, None], pa.float32()), r"ratings must be finite numbers at most 1e\+18"),
    (RATING, pa.array([1.0, 1e300], pa.float64()), r"ratings must be finite numbers at most 1e\+18"),
    (RATING, pa.array([1.0, -2e18], pa.float32()), r"ratings must be finite numbers at most 1e\+18"),
    (RATING, pa.array(["1", "2"], pa.string()), r"ratings must be finite numbers at most 1e\+18"),
])
def test_a_bad_value_is_refused_naming_the_file(tmp_path: Path, column: str, values: pa.Array, problem: str) -> None:
    columns = {USER: pa.array([1, 2], pa.int32()), ITEM: pa.array([3, 4], pa.int32()),
               RATING: pa.array([4.0, 5.0], pa.float32())}
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns | {column: values}), path)
    with pytest.raises(BadInputError, match=rf"bad\.parquet.*{problem}"):
        read_parquet_ratings(path)


def test_a_missing_column_or_an_empty_table_is_refused(tmp_path: Path) -> None:
    two = pa.table({USER: pa.array([1], pa.int32()), ITEM: pa.array([2], pa.int32())})
    pq.write_table(two, tmp_path / "two.parquet")
    with pytest.raises(BadInputError, match=r"two\.parquet.*not a Parquet table with columns"):
        read_parquet_ratings(tmp_path / "two.parquet")
    empty = pa.table({c: pa.array([], t) for c, t in ((USER, pa.int32()), (ITEM, pa.int32()), (RATING, pa.float32()))})
    pq.write_table(empty, tmp_path / "empty.parquet")
    with pytest.raises(BadInputError, match=r"empty\.parquet.*no ratings"):
        read_parquet_ratings(tmp_path / "empty.parquet")


@pytest.mark.torch
def test_without_a_holdout_the_counts_are_the_distinct_ids(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the PyTorch engine needs torch: pip install -r requirements-torch.txt")
    from tests.engines import run_engine

    rng = np.random.default_rng(4)
    users, items = np.nonzero(rng.random((80, 50)) < 0.3)
    frame = pd.DataFrame({USER: (users * 7 + 3).astype(np.int32), ITEM: (items * 5).astype(np.int32),
                          RATING: rng.uniform(1, 5, len(users)).astype(np.float32)})
    write_parquet(frame, tmp_path / "ratings.parquet")
    result = run_engine("torch", tmp_path / "ratings.parquet", params=ALSParams(rank=3, iterations=2, holdout=0.0))
    assert (result.counts.users, result.counts.items) == (frame[USER].nunique(), frame[ITEM].nunique())
    assert result.counts.train == len(frame)
