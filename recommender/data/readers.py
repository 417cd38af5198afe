"""Reading and writing ratings files on the driver, with pandas and pyarrow.

The fast path lets pandas parse the whole file; only when it fails or finds a suspect value is the
file read again line by line, so that the error names the exact line and problem.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recommender.data import parquet
from recommender.data.columns import COLUMNS, ITEM, RATING, USER
from recommender.data.formats import (
    INT32_MAX,
    RATING_LIMIT,
    STUDY_CSV,
    BadInputError,
    RatingsFormat,
    is_blank,
    line_problem,
    parse_line,
    repeat_problem,
)

MAX_REPORTED = 10
# Bytes a valid line can hold besides the separator: anything else ('+' in an id, a quote, a letter,
# an odd space) sends the file to the checked reader, whose rules pandas does not know.
_PLAIN = b"0123456789.eE- \t\r\n"
_BLOCK = 1 << 24


@dataclass
class ReadResult:
    """Ratings read from one file, with what was skipped when skipping was allowed."""

    frame: pd.DataFrame
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def check_readable(path: str | os.PathLike[str]) -> Path:
    """The path, if it names a non-empty file; otherwise a clear error."""
    p = Path(path)
    if not p.exists():
        raise BadInputError(str(p), "file does not exist")
    if not p.is_file():
        raise BadInputError(str(p), "is not a file")
    if p.stat().st_size == 0:
        raise BadInputError(str(p), "file is empty")
    return p


def read_ratings(
    path: str | os.PathLike[str], fmt: RatingsFormat = STUDY_CSV, skip_bad_rows: bool = False
) -> ReadResult:
    """All ratings in a file as (user int32, item int32, rating float32) columns."""
    p = check_readable(path)
    frame = _read_fast(p, fmt)
    if frame is not None:
        return ReadResult(frame)
    return _read_checked(p, fmt, skip_bad_rows)


def _only_plain_bytes(path: Path, fmt: RatingsFormat) -> bool:
    """Whether every byte after the header is one a valid line of `fmt` may hold (see `_PLAIN`)."""
    plain = _PLAIN + fmt.sep.encode()
    with path.open("rb") as handle:
        if fmt.header:
            handle.readline()
        return all(not block.translate(None, plain) for block in iter(lambda: handle.read(_BLOCK), b""))


def _read_fast(path: Path, fmt: RatingsFormat) -> pd.DataFrame | None:
    """Parse with pandas' C reader; None when anything looks wrong, for the checked path to explain."""
    if not _only_plain_bytes(path, fmt):
        return None
    source: str | io.BytesIO = str(path)
    sep = fmt.sep
    if len(sep) > 1:  # the C reader takes one-character separators only
        source = io.BytesIO(path.read_bytes().replace(sep.encode(), b"\t"))
        sep = "\t"
    # One column more than the format has: pandas would otherwise shift a line with an extra field.
    names = [USER, ITEM, RATING] + [f"extra{i}" for i in range(fmt.fields - 3)] + ["overflow"]
    try:
        frame = pd.read_csv(
            source,
            sep=sep,
            header=0 if fmt.header else None,
            names=names,  # no usecols: with it pandas 2.3 rejects every line that lacks the overflow
            dtype={USER: np.int64, ITEM: np.int64, RATING: np.float64, "overflow": object},
            skip_blank_lines=True,
            engine="c",
        )
    except (ValueError, OverflowError, pd.errors.ParserError):
        return None
    if frame["overflow"].notna().any():
        return None
    frame = frame[[USER, ITEM, RATING]]
    ids = frame[[USER, ITEM]].to_numpy()
    if len(frame) == 0 or (ids < 0).any() or (ids > INT32_MAX).any():
        return None
    if not (np.abs(frame[RATING].to_numpy()) <= RATING_LIMIT).all():  # NaN compares false too
        return None
    if frame.duplicated([USER, ITEM]).any():
        return None
    return frame.astype({USER: np.int32, ITEM: np.int32, RATING: np.float32})


def _read_checked(path: Path, fmt: RatingsFormat, skip_bad_rows: bool) -> ReadResult:
    """Read line by line under the rules; name the first bad line, or skip and count the bad lines."""
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    numbers: list[int] = []
    found: list[tuple[int, str]] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if (number == 1 and fmt.header) or is_blank(line):
                continue
            problem = line_problem(line, fmt)
            if problem is not None:
                bad += 1
                if len(found) < MAX_REPORTED:
                    found.append((number, problem))
                continue
            u, i, r = parse_line(line, fmt)
            users.append(u)
            items.append(i)
            ratings.append(r)
            numbers.append(number)
    frame = pd.DataFrame(
        {
            USER: np.asarray(users, dtype=np.int32),
            ITEM: np.asarray(items, dtype=np.int32),
            RATING: np.asarray(ratings, dtype=np.float32),
        }
    )
    later = frame.duplicated([USER, ITEM]).to_numpy()
    if later.any():
        lines = np.asarray(numbers, dtype=np.int64)
        first = pd.Series(lines).groupby([frame[USER], frame[ITEM]]).transform("min").to_numpy()
        repeats = [(int(n), repeat_problem(int(u), int(i), int(f))) for n, u, i, f in zip(
            lines[later][:MAX_REPORTED], frame[USER][later][:MAX_REPORTED],
            frame[ITEM][later][:MAX_REPORTED], first[later][:MAX_REPORTED], strict=True)]
        found = sorted(found + repeats)[:MAX_REPORTED]
        bad += int(later.sum())
        frame = frame[~later].reset_index(drop=True)
    if len(frame) == 0:
        if bad == 0:
            raise BadInputError(str(path), "no ratings (the file is empty)")
        first_bad, problem = found[0]
        raise BadInputError(str(path), f"{problem}; no valid ratings at all", line=first_bad, skipped=bad)
    if bad and not skip_bad_rows:
        first_bad, problem = found[0]
        raise BadInputError(str(path), problem, line=first_bad, skipped=bad)
    return ReadResult(frame, bad, [f"line {n}: {p}" for n, p in found])


def write_study_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write `userId,movieId,rating` lines with no header, atomically."""
    table = pa.Table.from_pandas(frame[list(COLUMNS)], preserve_index=False)
    tmp = path.with_name(path.name + ".tmp")
    pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(include_header=False))
    tmp.replace(path)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write the three rating columns to Parquet, atomically."""
    table = pa.Table.from_pandas(frame[list(COLUMNS)], preserve_index=False)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def local_size(path: str) -> int:
    """Bytes of a local input, 0 for remote ones (their size is the cluster's business)."""
    parsed = urlparse(path)
    if parsed.scheme not in ("", "file"):
        return 0
    local = Path(parsed.path if parsed.scheme == "file" else path)
    return sum(f.stat().st_size for f in local.rglob("*") if f.is_file()) if local.is_dir() else local.stat().st_size


def read_parquet_ratings(path: str | os.PathLike[str]) -> ReadResult:
    """The ratings of a Parquet file or folder of this suite's (user, item, rating), checked as a whole
    (`parquet.open_ratings`, `valid_ids`, `valid_ratings`), on any file system pyarrow reaches.
    Arrow reads the batches on all cores, each copied into int32/float32 arrays sized from the footers
    and dropped: 12 bytes a rating in all, where a whole table and its conversion held 24 or more."""
    uri = str(path)
    found = parquet.filesystem(uri)
    if found is None:
        raise BadInputError(uri, "no file system pyarrow can read this path with")
    dataset = parquet.open_ratings(uri, *found)
    try:
        n = dataset.count_rows()
        if n == 0:
            raise BadInputError(uri, "no ratings (the table is empty)")
        columns = {USER: np.empty(n, np.int32), ITEM: np.empty(n, np.int32), RATING: np.empty(n, np.float32)}
        done = 0
        # Pre-buffering whole row groups (for high-latency stores) left 5 bytes a rating of freed buffers resident.
        for batch in dataset.to_batches(columns=list(COLUMNS), fragment_scan_options=parquet.UNBUFFERED):
            stop = done + batch.num_rows
            for name, out in columns.items():
                column = batch.column(name)
                if name == RATING and not parquet.valid_ratings(column).all():
                    raise BadInputError(uri, parquet.RATINGS_PROBLEM)
                if name != RATING and not parquet.valid_ids(column).all():
                    raise BadInputError(uri, parquet.IDS_PROBLEM)
                out[done:stop] = column.to_numpy(zero_copy_only=False)
            done = stop
    except (pa.ArrowInvalid, OSError) as error:
        raise BadInputError(uri, parquet.not_a_table(error)) from None
    return ReadResult(pd.DataFrame(columns, copy=False))


def read_any(path: str | os.PathLike[str], skip_bad_rows: bool = False) -> ReadResult:
    """A study-format text file, or a Parquet file or folder (by its `.parquet` name)."""
    if str(path).rstrip("/").endswith(".parquet"):
        return read_parquet_ratings(path)
    return read_ratings(path, STUDY_CSV, skip_bad_rows)
