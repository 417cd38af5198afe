"""Bad input through both Spark loaders: the file, the line and the problem, or counted skips."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.data.formats import STUDY_CSV, BadInputError, is_blank, line_problem, parse_line
from recommender.data.readers import ITEM, MAX_REPORTED, RATING, USER, write_parquet, write_study_csv
from recommender.params import ALSParams
from recommender.spark.loading import CACHE_COMPRESSED, check_lines, fast_pass, load_df, load_ratings, load_rdd
from recommender.split import holdout_hash, holdout_sql
from tests.bad_inputs import ACCEPTED, BAD_LINES
from tests.engines import run_engine

pytestmark = pytest.mark.spark
APIS = ("rdd", "df")
GOOD = "".join(f"{u},{i},{(u * i) % 5 + 1}.0\n" for u in range(1, 9) for i in range(1, 9))

PARAMS = ALSParams(rank=2, iterations=2, reg=0.1)


CASES = sorted(BAD_LINES)
CHUNKS = [CASES[k : k + MAX_REPORTED] for k in range(0, len(CASES), MAX_REPORTED)]  # all reported at once
# The lines that stop a strict run in CI: one the fast pass refuses, one only the repeats job finds. Every
# line of the table reaches that error the same way (`loading._finish`), and CI checks each line's verdict
# and message through both loaders in `test_every_bad_line_is_skipped_and_named`; all of them, strictly, under slow.
STRICT_IN_CI = ("non-numeric rating", "repeated pair")


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
def test_every_bad_line_is_skipped_and_named(spark, tmp_path: Path, api: str, chunk: int) -> None:
    cases = CHUNKS[chunk]
    path = tmp_path / "ratings.csv"
    path.write_text(GOOD + "".join(BAD_LINES[case][0] + "\n" for case in cases))
    result = run_engine("python", str(path), api, PARAMS, skip_bad_rows=True, spark=spark)
    assert result.counts.ratings == 64 and result.counts.skipped_rows == len(cases)
    assert result.skipped_examples == [f"line {65 + n}: {BAD_LINES[case][1]}" for n, case in enumerate(cases)]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", [pytest.param(case, marks=[] if case in STRICT_IN_CI else [pytest.mark.slow])
                                  for case in CASES])
def test_bad_line_is_named(spark, tmp_path: Path, api: str, case: str) -> None:
    line, problem = BAD_LINES[case]
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


@pytest.mark.parametrize("api", APIS)
def test_a_singular_fit_is_a_clean_error(spark, tmp_path: Path, api: str) -> None:
    """MLlib cannot fit the largest rating (1e18) beside ratings of 1 to 5: its normal matrix turns
    singular. That is an error naming the input and the way out, not a Java trace."""
    path = tmp_path / "ratings.csv"
    path.write_text(GOOD + ACCEPTED["largest rating"][0] + "\n")
    with pytest.raises(BadInputError, match=rf"^{path}: ALS could not fit these ratings at rank 2 with --reg 0.1: "
                                            r"a normal matrix is singular .*try a larger --reg$"):
        run_engine("python", str(path), api, PARAMS, spark=spark)


@pytest.mark.parametrize("api", APIS)
def test_documented_acceptances(spark, tmp_path: Path, api: str) -> None:
    """Read, not fitted: MLlib cannot fit the largest rating (see above).
    Lines the DataFrame loader's fast pass is unsure of ("-0") reach the exact pass and are kept."""
    path = tmp_path / "ratings.csv"
    path.write_text(GOOD + "".join(line + "\n" for line, _ in ACCEPTED.values()))
    if api == "df":
        frame, loaded = load_df(spark, str(path), False)
        rows = [(r[USER], r[ITEM], r[RATING]) for r in frame.collect()]
    else:
        ratings, loaded = load_rdd(spark, str(path), False)
        rows = [(r.user, r.product, r.rating) for r in ratings.collect()]
    assert loaded.ratings == 64 + len(ACCEPTED) and loaded.skipped == 0
    expected = [(u, i, float(np.float32(r)) if api == "df" else r) for _, (u, i, r) in ACCEPTED.values()]
    assert sorted(rows)[-len(ACCEPTED):] == sorted(expected)


@pytest.mark.parametrize("api", APIS)
def test_blank_lines_are_ignored_but_counted_in_line_numbers(spark, tmp_path: Path, api: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(GOOD + "\n \t\n\n")
    assert run_engine("python", str(path), api, PARAMS, spark=spark).counts.ratings == 64
    bad = tmp_path / "bad.csv"  # another name: Spark would reuse the first file's cached rows
    bad.write_text("\n" + GOOD + "\n1,2,x\n\n")
    with pytest.raises(BadInputError, match=r"line 67: rating 'x'"):
        run_engine("python", str(bad), api, PARAMS, spark=spark)


@pytest.mark.parametrize("api", APIS)
def test_skipping_a_repeated_pair_keeps_the_first_and_both_apis_agree(spark, tmp_path: Path, api: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(GOOD + "1,1,5.0\n3,4,1.0\n")
    result = run_engine("python", str(path), api, PARAMS, skip_bad_rows=True, spark=spark)
    assert result.counts.ratings == 64 and result.counts.skipped_rows == 2
    assert result.skipped_examples == [
        "line 65: user 1 rated movie 1 again (first on line 1)",
        "line 66: user 3 rated movie 4 again (first on line 20)",
    ]
    reference = tmp_path / "first.csv"
    reference.write_text(GOOD)
    expected = run_engine("python", str(reference), api, PARAMS, spark=spark).metrics.train_mse
    assert result.metrics.train_mse == pytest.approx(expected)


@pytest.mark.parametrize("api", APIS)
def test_holdout_that_leaves_no_training_ratings_names_the_file(spark, tmp_path: Path, api: str) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(BadInputError, match=r"tiny\.csv: .*no ratings left for training"):
        run_engine("python", str(path), api, ALSParams(rank=2, iterations=2, reg=0.1, holdout=0.99), spark=spark)


def test_a_parquet_conversion_loads_as_its_text_does(spark, tmp_path: Path) -> None:
    frame = pd.DataFrame({USER: [1, 1, 2, 3], ITEM: [5, 6, 5, 7], RATING: [4.0, 3.5, 1.0, 5.0]})
    write_study_csv(frame, tmp_path / "ratings.csv")
    write_parquet(frame, tmp_path / "ratings.parquet")
    text, _ = load_ratings(spark, str(tmp_path / "ratings.csv"), False)
    table, loaded = load_ratings(spark, str(tmp_path / "ratings.parquet"), False)
    assert loaded.ratings == 4 and sorted(table.collect()) == sorted(text.collect())


def test_a_parquet_table_with_bad_values_is_refused_naming_it(spark, tmp_path: Path) -> None:
    frame = pd.DataFrame({USER: [1, -2], ITEM: [5, 6], RATING: [4.0, float("nan")]})
    write_parquet(frame, tmp_path / "bad.parquet")
    with pytest.raises(BadInputError, match=r"bad\.parquet: 1 rows with a negative or missing id"):
        load_ratings(spark, str(tmp_path / "bad.parquet"), False)
    with pytest.raises(BadInputError, match="does not exist"):
        load_ratings(spark, str(tmp_path / "none.parquet"), False)


@pytest.mark.parametrize("api", APIS)
def test_unique_pairs_skips_the_repeated_pair_pass_and_only_that(spark, tmp_path: Path, api: str) -> None:
    """`unique_pairs` trusts a validated conversion: a repeat is then not looked for; bad lines still are."""
    load = load_df if api == "df" else load_rdd
    repeated = tmp_path / "repeated.csv"
    repeated.write_text(GOOD + "1,1,5.0\n")
    with pytest.raises(BadInputError, match="line 65: user 1 rated movie 1 again"):
        load(spark, str(repeated), False)
    _, loaded = load(spark, str(repeated), False, unique_pairs=True)
    assert loaded.ratings == 65 and loaded.skipped == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD + "1,2,x\n")
    with pytest.raises(BadInputError, match="line 65: rating 'x'"):
        load(spark, str(bad), False, unique_pairs=True)


def test_the_fast_pass_alone_takes_padded_fields(spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spaces, tabs, a CR and leading zeros are settled by the fast pass, without the exact line pass."""
    import recommender.spark.loading as loading

    def no_exact_pass(*_: object) -> None:
        raise AssertionError("the exact pass ran")

    monkeypatch.setattr(loading, "check_lines", no_exact_pass)
    path = tmp_path / "padded.csv"
    path.write_text(GOOD + " 9 ,\t3\t, 3.5 \r\n0009,4,+.5e1\r\n")
    frame, loaded = load_df(spark, str(path), False)
    assert loaded.ratings == 66
    assert sorted(tuple(r) for r in frame.filter(f"{USER} = 9").collect()) == [(9, 3, 3.5), (9, 4, 5.0)]


def test_the_exact_pass_names_the_first_bad_lines_of_many(spark, tmp_path: Path) -> None:
    """With more bad lines in each partition than it reports, the exact pass still counts them all
    and names the first ones in line order; the ratings left keep the file's order."""
    path = tmp_path / "ratings.csv"
    path.write_text("".join(f"{n},1,x\n" if n % 2 else f"{n},1,3.0\n" for n in range(1, 201)))
    checked = check_lines(spark, str(path))
    assert (checked.good, checked.bad) == (100, 100)
    assert checked.found == [(n, "rating 'x' is not a finite number") for n in range(1, 21, 2)]
    assert checked.rows().collect() == [(n, 1, 3.0) for n in range(2, 201, 2)]


# Lines of the characters that decide a field's fate; no line break, which the readers split on alike.
TRICKY = st.text(alphabet="0123456789,,, \t+-.eExXdf\x00\x0b\x85\u2028\u0661", max_size=16)
PLAIN = st.builds(lambda u, i, r: f"{u},{i},{r!r}", st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1),
                  st.floats(-1e18, 1e18, allow_nan=False))
FILES = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(TRICKY.map(lambda t: (t, False)), PLAIN.map(lambda t: (t, True))), max_size=400))
def test_the_fast_pass_takes_only_what_the_rules_take(spark, tmp_path: Path, lines: list[tuple[str, bool]]) -> None:
    """Line by line, the fast pass is sure only of lines the exact rules take, reads them as they do,
    and is sure of every line written plainly (the files it spares the exact pass)."""
    path = tmp_path / f"lines-{next(FILES)}.csv"
    path.write_text("".join(line + "\n" for line, _ in lines) or "\n")
    kept = [(line, plain) for line, plain in lines if not is_blank(line)]
    found = fast_pass(spark, str(path)).collect()  # one small file: one partition, in file order
    assert len(found) == len(kept)
    for (line, plain), row in zip(kept, found, strict=True):
        assert row["ok"] or not plain, line
        if row["ok"]:
            assert line_problem(line, STUDY_CSV) is None, line
            user, item, rating = parse_line(line, STUDY_CSV)
            assert (row[USER], row[ITEM], row[RATING]) == (user, item, np.float32(rating)), line


def _cached_bytes(spark) -> int:
    return sum(info.memSize() for info in spark.sparkContext._jsc.sc().getRDDStorageInfo())


def test_the_loaded_ratings_are_cached_uncompressed_unless_the_session_says(spark, tmp_path: Path) -> None:
    """The load's cache skips Spark's column encoders (they cost more than the parse); a session that
    sets the choice keeps it, and the setting is left as it was."""
    path = tmp_path / "ratings.csv"
    path.write_text("".join(f"{u},{i},4.0\n" for u in range(200) for i in range(100)))
    spark.catalog.clearCache()
    sizes = {}
    for chosen in (None, "true"):
        if chosen is not None:
            spark.conf.set(CACHE_COMPRESSED, chosen)
        try:
            before = _cached_bytes(spark)  # other tests' RDDs may still be cached in the shared session
            load_df(spark, str(path), False)
            sizes[chosen] = _cached_bytes(spark) - before
            assert spark.conf.get(CACHE_COMPRESSED, None) == chosen
        finally:
            spark.catalog.clearCache()
            spark.conf.unset(CACHE_COMPRESSED)
    assert sizes[None] > 2 * sizes["true"]
