"""Implicit-feedback views (`positives:R:NAME`): names, the filtered files and their counts, the cache."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.data import views
from recommender.data.formats import BadInputError
from recommender.data.sources import prepare, rating_scale, stored_locally, validated_conversion
from recommender.data.views import PositivesSpec, base_of, parse_positives

pytestmark = pytest.mark.unit
NAMES = ["user", "item", "rating"]


def write_csv(path: Path, rows: list[tuple[int, int, float]]) -> Path:
    path.write_text("".join(f"{u},{i},{r:g}\n" for u, i, r in rows))
    return path


@pytest.fixture
def ratings(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    rows = [(int(u), int(i), float(r)) for u, i, r in zip(
        rng.integers(0, 40, 400), rng.integers(0, 60, 400), rng.choice(np.arange(1, 5.5, 0.5), 400), strict=True)]
    rows = list({(u, i): (u, i, r) for u, i, r in rows}.values())  # no repeated pair
    return write_csv(tmp_path / "ratings.csv", rows)


def expected(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The view by pandas: the base's float32 ratings compared with R, kept ones set to 1."""
    kept = frame[frame["rating"].astype(np.float32) >= np.float32(threshold)]
    return kept.assign(rating=np.float32(1)).astype({"user": np.int32, "item": np.int32}).reset_index(drop=True)


def read_view_csv(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path, header=None, names=NAMES)
    return frame.astype({"user": np.int32, "item": np.int32, "rating": np.float32})


def check_view(prepared_csv: str, prepared_parquet: str | None, want: pd.DataFrame) -> None:
    assert prepared_parquet is not None
    from_csv, from_parquet = read_view_csv(prepared_csv), pd.read_parquet(prepared_parquet)
    pd.testing.assert_frame_equal(from_parquet, want)
    pd.testing.assert_frame_equal(from_csv, want)
    assert (from_parquet["rating"] == 1).all()


def test_names_parse_and_print_canonically() -> None:
    assert parse_positives("positives:4:ml-20m") == PositivesSpec(4.0, "ml-20m")
    assert parse_positives("positives:3.5:synthetic:ml-20m") == PositivesSpec(3.5, "synthetic:ml-20m")
    assert parse_positives("positives:4:ml-100k:u1").base == "ml-100k:u1"
    assert parse_positives("positives:-1e1:fractal:ml-100k:16x32").threshold == -10.0
    assert parse_positives("positives:4.0:ml-20m").name == "positives:4:ml-20m"
    assert parse_positives("positives:.25:x.csv").name == "positives:0.25:x.csv"
    assert base_of("positives:4:positives:3:ml-100k:u1") == "ml-100k:u1"


@pytest.mark.parametrize("name, problem", [
    ("positives:", "there is no data name after the threshold"),
    ("positives:4", "there is no data name after the threshold"),
    ("positives:4:", "the data name is empty"),
    ("positives::ml-20m", "the threshold '' is not a finite number"),
    ("positives:four:ml-20m", "the threshold 'four' is not a finite number"),
    ("positives:nan:ml-20m", "the threshold 'nan' is not a finite number"),
    ("positives:inf:ml-20m", "the threshold 'inf' is not a finite number"),
    ("positives:1e999:ml-20m", "the threshold '1e999' is not a finite number"),
    ("positives:0x10:ml-20m", "the threshold '0x10' is not a finite number"),
    ("positives:1_000:ml-20m", "the threshold '1_000' is not a finite number"),
])
def test_bad_names_say_what_is_wrong_and_what_is_expected(name: str, problem: str, tmp_path: Path) -> None:
    expected_text = "expected positives:R:NAME with R a finite number, e.g. positives:4:ml-20m; "
    with pytest.raises(ValueError, match="^" + re.escape(f"'{name}': {expected_text}{problem}") + "$"):
        prepare(name, None, tmp_path)


def test_a_view_of_a_file_keeps_the_positives_as_ones(ratings: Path, tmp_path: Path) -> None:
    prepared = prepare(f"positives:4:{ratings}", None, tmp_path / "cache")
    want = expected(pd.read_csv(ratings, header=None, names=NAMES), 4)
    assert 0 < len(want) < len(pd.read_csv(ratings, header=None))
    assert (prepared.ratings, prepared.users, prepared.items) == (
        len(want), want["user"].nunique(), want["item"].nunique())
    check_view(prepared.csv, prepared.parquet, want)
    assert Path(prepared.csv).read_text().splitlines()[0].endswith(",1")  # the study's format, no header
    assert prepared.test_csv is None and prepared.oracle_mse is None
    assert prepared.source == f"ratings >= 4 of {ratings}"


def test_ratings_are_compared_as_float32(tmp_path: Path) -> None:
    base = write_csv(tmp_path / "r.csv", [(1, 1, 3.3), (1, 2, 3.2999), (2, 1, 5.0)])
    prepared = prepare(f"positives:3.3:{base}", None, tmp_path / "cache")
    assert read_view_csv(prepared.csv).values.tolist() == [[1, 1, 1], [2, 1, 1]]


def test_a_large_base_is_streamed_in_batches(ratings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "BATCH", 16)  # many batches, row groups and merges of the distinct ids
    prepared = prepare(f"positives:3:{ratings}", None, tmp_path / "cache")
    want = expected(pd.read_csv(ratings, header=None, names=NAMES), 3)
    check_view(prepared.csv, prepared.parquet, want)
    assert (prepared.users, prepared.items) == (want["user"].nunique(), want["item"].nunique())
    assert prepared.parquet is not None and pq.ParquetFile(prepared.parquet).metadata.num_row_groups > 1


def test_a_parquet_base_of_the_users_own(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user": [1, 2, 3], "item": [7, 8, 9], "rating": [4.5, 2.0, 4.0]})  # int64, float64
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "mine.parquet")
    prepared = prepare(f"positives:4:{tmp_path / 'mine.parquet'}", None, tmp_path / "cache")
    check_view(prepared.csv, prepared.parquet, expected(frame, 4))
    assert not validated_conversion(f"positives:4:{tmp_path / 'mine.parquet'}")  # a user's file: checked on load


def test_the_view_is_reused_until_its_base_changes(ratings: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = prepare(f"positives:4:{ratings}", None, cache)
    stamp = Path(first.csv).stat().st_mtime_ns, Path(first.parquet or "").stat().st_mtime_ns
    again = prepare(f"positives:4:{ratings}", None, cache)
    assert again == first
    assert (Path(again.csv).stat().st_mtime_ns, Path(again.parquet or "").stat().st_mtime_ns) == stamp
    spelled = prepare(f"positives:4.0:{ratings}", None, cache)  # the same view: same files, its own name
    assert spelled.name == f"positives:4.0:{ratings}" and spelled.csv == first.csv
    assert Path(first.csv).stat().st_mtime_ns == stamp[0]
    assert prepare(f"positives:4.5:{ratings}", None, cache).csv != first.csv  # another R: another view

    write_csv(ratings, [(1, 1, 5.0), (1, 2, 1.0)])
    os.utime(ratings, ns=(stamp[0] + 10**9, stamp[0] + 10**9))
    changed = prepare(f"positives:4:{ratings}", None, cache)
    assert (changed.ratings, changed.users, changed.items) == (1, 1, 1)
    assert read_view_csv(changed.csv).values.tolist() == [[1, 1, 1]]


def test_a_view_that_keeps_nothing_is_an_error(ratings: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ratings\.csv: no rating is at least 6\.0, so the view keeps none"):
        prepare(f"positives:6:{ratings}", None, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_a_bad_line_of_the_base_is_named(tmp_path: Path) -> None:
    base = tmp_path / "r.csv"
    base.write_text("1,1,5\n1,x,4\n")
    with pytest.raises(BadInputError, match=r"r\.csv, line 2"):
        prepare(f"positives:4:{base}", None, tmp_path / "cache")


def test_a_view_is_treated_as_its_base(tmp_path: Path) -> None:
    for name in ("positives:4:ml-20m", "positives:4:ml-100k:u1", "positives:3.5:synthetic:ml-20m",
                 "positives:4:fractal:ml-100k:16x32", "positives:1:positives:4:ml-1m"):
        assert validated_conversion(name), name
        assert rating_scale(name) is None, name  # no [1, 1] clip: see rating_scale
    assert not validated_conversion("positives:4:ratings.csv")
    cache = tmp_path / "cache"
    assert not stored_locally("positives:4:ml-20m", None, cache)
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / "ml-20m.zip").write_bytes(b"")
    assert stored_locally("positives:4:ml-20m", None, cache) == stored_locally("ml-20m", None, cache) is True


def test_ml100k_positives(movielens_dir: Path, tmp_path: Path) -> None:
    prepared = prepare("positives:4:ml-100k", movielens_dir, tmp_path)
    base = pd.read_parquet(prepare("ml-100k", movielens_dir, tmp_path).parquet)
    want = expected(base, 4)
    assert (prepared.ratings, prepared.users, prepared.items) == (55_375, want["user"].nunique(),
                                                                 want["item"].nunique())
    assert len(want) == 55_375
    check_view(prepared.csv, prepared.parquet, want)
    assert validated_conversion("positives:4:ml-100k")


def test_ml100k_u1_positives_filter_the_test_file_too(movielens_dir: Path, tmp_path: Path) -> None:
    split = prepare("ml-100k:u1", movielens_dir, tmp_path)
    prepared = prepare("positives:4:ml-100k:u1", movielens_dir, tmp_path)
    assert prepared.test_csv is not None and prepared.test_parquet is not None
    train, test = pd.read_parquet(split.parquet), pd.read_parquet(split.test_parquet)
    check_view(prepared.csv, prepared.parquet, expected(train, 4))
    check_view(prepared.test_csv, prepared.test_parquet, expected(test, 4))
    assert prepared.ratings == len(expected(train, 4)) and prepared.test_for(True) == prepared.test_parquet


def test_a_view_of_an_expansion(movielens_dir: Path, tmp_path: Path) -> None:
    fractal = prepare("fractal:ml-100k:2x2", movielens_dir, tmp_path)
    prepared = prepare("positives:3.5:fractal:ml-100k:2x2", movielens_dir, tmp_path)
    assert fractal.parquet is not None and Path(fractal.parquet).is_dir()  # a folder of parts
    want = expected(pd.read_parquet(fractal.parquet), 3.5)
    assert (prepared.ratings, prepared.users, prepared.items) == (
        len(want), want["user"].nunique(), want["item"].nunique())
    check_view(prepared.csv, prepared.parquet, want)
