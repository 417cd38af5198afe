"""ml-100k's published splits (`--data ml-100k:u1`), made from u.data by the set's mku.sh rules."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender.data.movielens import SETS, split_frame
from recommender.data.readers import read_ratings
from recommender.data.sources import prepare

pytestmark = pytest.mark.unit
ML100K = SETS["ml-100k"]


@pytest.fixture(scope="module")
def udata(movielens_dir: Path) -> pd.DataFrame:
    return read_ratings(movielens_dir / "ml-100k" / "u.data", ML100K.fmt).frame


def test_five_folds_are_disjoint_and_cover_u_data(udata: pd.DataFrame) -> None:
    tests = [split_frame(ML100K, f"u{i}", udata)[1] for i in range(1, 6)]
    assert [len(t) for t in tests] == [20_000] * 5  # the published u1.test .. u5.test sizes
    assert sorted(pd.concat(tests).index) == list(udata.index)
    train, test = split_frame(ML100K, "u3", udata)
    assert len(train) == 80_000 and not set(train.index) & set(test.index)


@pytest.mark.parametrize("split, first", [("ua", 0), ("ub", 10)])
def test_ua_ub_hold_ten_ratings_of_every_user(udata: pd.DataFrame, split: str, first: int) -> None:
    train, test = split_frame(ML100K, split, udata)
    assert (len(train), len(test)) == (90_570, 9_430)  # the published ua/ub sizes
    assert (test.groupby("user").size() == 10).all()
    # Each user's ratings number first+1 .. first+10 in u.data's order.
    by_user = udata.groupby("user")
    assert set(test.index) == set(by_user.head(first + 10).index) - set(by_user.head(first).index)


def test_unknown_splits_are_named() -> None:
    with pytest.raises(ValueError, match="ml-100k:u9: unknown split; its splits are u1, u2, u3, u4, u5, ua, ub"):
        split_frame(ML100K, "u9", pd.DataFrame())
    with pytest.raises(ValueError, match="ml-1m:u1: unknown split; it publishes no splits"):
        split_frame(SETS["ml-1m"], "u1", pd.DataFrame())


def test_prepare_a_split(movielens_dir: Path, tmp_path: Path) -> None:
    prepared = prepare("ml-100k:u1", movielens_dir, tmp_path)
    assert (prepared.name, prepared.ratings) == ("ml-100k:u1", 80_000)
    assert prepared.test_csv is not None and prepared.test_for(True) == prepared.test_parquet
    assert len(pd.read_csv(prepared.test_csv, header=None)) == 20_000
    assert prepare("ml-100k:u1", movielens_dir, tmp_path) == prepared  # cached
    assert prepare("ml-100k", movielens_dir, tmp_path).test_csv is None
