"""Parsing every MovieLens ratings format, and clear errors for every kind of bad line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.data.formats import (
    ML_100K_TSV,
    ML_CSV,
    ML_DAT,
    STUDY_CSV,
    BadInputError,
    RatingsFormat,
    line_problem,
)
from recommender.data.readers import read_ratings, write_study_csv
from tests.bad_inputs import ACCEPTED, BAD_LINES

pytestmark = pytest.mark.unit

rows = st.lists(
    st.tuples(
        st.integers(0, 2**31 - 1),
        st.integers(0, 2**31 - 1),
        st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]),
    ),
    min_size=1,
    max_size=50,
    unique_by=lambda row: (row[0], row[1]),  # a repeated pair is a bad line
)


def render(fmt: RatingsFormat, data: list[tuple[int, int, float]]) -> str:
    header = "userId,movieId,rating,timestamp\n" if fmt.header else ""
    extra = [str(881250949)] * (fmt.fields - 3)
    body = "".join(fmt.sep.join([str(u), str(i), str(r), *extra]) + "\n" for u, i, r in data)
    return header + body


@pytest.mark.parametrize("fmt", [STUDY_CSV, ML_100K_TSV, ML_DAT, ML_CSV], ids=lambda f: f.describe())
@settings(max_examples=25, deadline=None)
@given(data=rows)
def test_every_format_round_trips(tmp_path_factory: pytest.TempPathFactory, fmt: RatingsFormat, data) -> None:
    path = tmp_path_factory.mktemp("fmt") / "ratings.txt"
    path.write_text(render(fmt, data))
    frame = read_ratings(path, fmt).frame
    assert frame["user"].tolist() == [u for u, _, _ in data]
    assert frame["item"].tolist() == [i for _, i, _ in data]
    assert np.allclose(frame["rating"], [r for _, _, r in data])


@settings(max_examples=25, deadline=None)
@given(data=rows)
def test_study_csv_written_and_read_back(tmp_path_factory: pytest.TempPathFactory, data) -> None:
    path = tmp_path_factory.mktemp("study") / "ratings.csv"
    path.write_text(render(STUDY_CSV, data))
    frame = read_ratings(path).frame
    out = path.with_name("copy.csv")
    write_study_csv(frame, out)
    assert out.read_text().count("\n") == len(data)
    assert read_ratings(out).frame.equals(frame)


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_named_with_file_and_line(tmp_path: Path, case: str) -> None:
    line, problem = BAD_LINES[case]
    path = tmp_path / "ratings.csv"
    path.write_text(f"1,1,4.0\n2,3,3.5\n{line}\n4,5,1.0\n")
    with pytest.raises(BadInputError) as info:
        read_ratings(path)
    assert str(info.value) == f"{path}, line 3: {problem}"
    assert info.value.line == 3


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_skip_bad_rows_counts_what_it_skips(tmp_path: Path, case: str) -> None:
    line, problem = BAD_LINES[case]
    path = tmp_path / "ratings.csv"
    path.write_text(f"1,1,4.0\n{line}\n2,3,3.5\n{line}\n")
    result = read_ratings(path, skip_bad_rows=True)
    assert len(result.frame) == 2
    assert result.skipped == 2
    assert result.problems[0] == f"line 2: {problem}"


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_documented_acceptances(tmp_path: Path, case: str) -> None:
    line, (user, item, rating) = ACCEPTED[case]
    path = tmp_path / "ratings.csv"
    path.write_text(f"1,1,4.0\n{line}\n")
    frame = read_ratings(path).frame
    assert frame.iloc[1].tolist() == [user, item, np.float32(rating)]


def test_blank_lines_are_ignored_but_counted_in_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("1,2,3\n\n \t\n4,5,1\n\n\n")
    assert len(read_ratings(path).frame) == 2
    path.write_text("1,2,3\n\n\n4,5,x\n\n")
    with pytest.raises(BadInputError, match=r"line 4: rating 'x'"):
        read_ratings(path)


def test_a_repeated_pair_names_the_later_line_even_after_other_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("1,2,3\n1,2,4\n5,6,x\n")
    with pytest.raises(BadInputError) as info:
        read_ratings(path)
    assert str(info.value) == f"{path}, line 2: user 1 rated movie 2 again (first on line 1) (2 bad lines in all)"
    result = read_ratings(path, skip_bad_rows=True)
    assert result.frame["rating"].tolist() == [3.0] and result.skipped == 2


def test_header_line_is_counted_in_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,2,3.5,1\n1,3,x,1\n")
    with pytest.raises(BadInputError, match=r"line 3: rating 'x'"):
        read_ratings(path, ML_CSV)


def test_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_bytes(b"1,2,3.5\r\n4,5,1\r\n")
    assert read_ratings(path).frame["rating"].tolist() == [3.5, 1.0]
    assert line_problem("4,5,1\r", STUDY_CSV) is None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"missing\.csv: file does not exist"):
        read_ratings(tmp_path / "missing.csv")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(BadInputError, match=r"empty\.csv: file is empty"):
        read_ratings(path)


def test_only_bad_lines_with_skipping_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\nd,e,f\n")
    problem = r"line 1: user id 'a' is not an integer; no valid ratings at all \(2 bad lines in all\)"
    with pytest.raises(BadInputError, match=problem):
        read_ratings(path, skip_bad_rows=True)


@pytest.mark.parametrize("fmt", [STUDY_CSV, ML_100K_TSV, ML_DAT])
def test_valid_files_take_the_fast_reader(tmp_path: Path, fmt: RatingsFormat) -> None:
    """The line-by-line reader is for explaining bad input; a valid file must never need it
    (it is about eight times slower: 70 s against 9 s on 20M ratings)."""
    from recommender.data import readers as ratings_io

    extra = [fmt.sep + "881250949"] * (fmt.fields - 3)
    lines = [fmt.sep.join(["196", "242", "3"]) + "".join(extra), fmt.sep.join(["7", "1", "4.5"]) + "".join(extra)]
    path = tmp_path / "r.txt"
    path.write_text(("userId,movieId,rating\n" if fmt.header else "") + "\n".join(lines) + "\n")
    frame = ratings_io._read_fast(path, fmt)
    assert frame is not None and list(frame[ratings_io.USER]) == [196, 7]
    path.write_text("196" + fmt.sep + "x" + fmt.sep + "3\n")
    assert ratings_io._read_fast(path, fmt) is None
