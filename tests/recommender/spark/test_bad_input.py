"""Bad input through both Spark loaders: the file, the line and the problem, or counted skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.data.formats import BadInputError
from recommender.params import ALSParams
from recommender.split import holdout_hash, holdout_sql
from tests.engines import run_engine

pytestmark = pytest.mark.spark
APIS = ("rdd", "df")
GOOD = "".join(f"{u},{i},{(u * i) % 5 + 1}.0\n" for u in range(1, 9) for i in range(1, 9))

CASES = {
    "wrong field count": ("1,2,3,4", "expected 3 fields separated by ',', found 4"),
    "non-numeric rating": ("1,2,three", "rating 'three' is not a finite number"),
    "NaN rating": ("1,2,NaN", "rating 'NaN' is not a finite number"),
    "negative id": ("-3,2,4.0", "user id -3 is negative"),
    "out-of-range id": ("1,99999999999,4.0", "movie id 99999999999 is out of range (ids must fit a 32-bit integer)"),
}
PARAMS = ALSParams(rank=2, iterations=2, reg=0.1)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_line_is_named(spark, tmp_path: Path, api: str, case: str) -> None:
    line, problem = CASES[case]
    path = tmp_path / "ratings.csv"
    path.write_text(GOOD + line + "\n")
    with pytest.raises(BadInputError) as info:
        run_engine("python", str(path), api, PARAMS, spark=spark)
    assert str(info.value) == f"{path}, line 65: {problem}"


@pytest.mark.parametrize("api", APIS)
def test_skip_bad_rows_reports_what_it_skipped(spark, tmp_path: Path, api: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("1,2,x\n" + GOOD + "7,8\n")
    result = run_engine("python", str(path), api, PARAMS, skip_bad_rows=True, spark=spark)
    assert result.counts.ratings == 64 and result.counts.skipped_rows == 2
    assert result.skipped_examples == [
        "line 1: rating 'x' is not a finite number",
        "line 66: expected 3 fields separated by ',', found 2",
    ]


@pytest.mark.parametrize("api", APIS)
def test_missing_and_empty_files(spark, tmp_path: Path, api: str) -> None:
    with pytest.raises(BadInputError, match=r"nope\.csv: file does not exist"):
        run_engine("python", str(tmp_path / "nope.csv"), api, PARAMS, spark=spark)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(BadInputError, match=r"empty\.csv: file is empty"):
        run_engine("python", str(empty), api, PARAMS, spark=spark)


def test_sql_holdout_hash_equals_the_python_one(spark) -> None:
    pairs = [(0, 0), (1, 1), (196, 242), (2**31 - 1, 2**31 - 1), (123456, 7), (7, 123456)]
    frame = spark.createDataFrame(pairs, "user int, item int")
    for seed in (0, 42, 2**31 - 1):
        rows = frame.selectExpr("user", "item", f"{holdout_sql('user', 'item', seed)} AS h").collect()
        assert [r["h"] for r in rows] == [holdout_hash(u, i, seed) for u, i in pairs]
