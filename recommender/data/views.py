"""Implicit-feedback views: `positives:R:NAME` is NAME's ratings of at least R, each as the value 1.

This is the field's standard implicit benchmark view (the `implicit` library's ml-20m benchmark keeps
the ratings >= 4 as positives); the plain NAME stays MLlib's reading of ratings as strengths. A
predefined split's test file is filtered by the same rule, so its held-out items are the positives.
The view is written from the base's prepared files a batch at a time, into a ParquetWriter and a CSV
writer together, so memory does not grow with the base. Ratings are compared as float32, the
precision every engine reads them in: `positives:3.3:…` keeps a rating written 3.3.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recommender.data import parquet
from recommender.data.columns import COLUMNS, ITEM, RATING, USER
from recommender.data.formats import BadInputError
from recommender.data.readers import read_ratings

POSITIVES = "positives:"
VERSION = 1  # bump when a view's content would change
BATCH = 1 << 20  # rows read at a time, and the rows of each written row group (fractal_output's ROW_GROUP)
SCHEMA = pa.schema([(USER, pa.int32()), (ITEM, pa.int32()), (RATING, pa.float32())])
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class PositivesSpec:
    """`positives:R:NAME`: NAME's ratings of at least `threshold`, each as 1."""

    threshold: float
    base: str

    @property
    def threshold_text(self) -> str:
        """R as its shortest exact decimal (`4`, not `4.0`)."""
        return repr(self.threshold).removesuffix(".0")

    @property
    def name(self) -> str:
        """The canonical name."""
        return f"{POSITIVES}{self.threshold_text}:{self.base}"

    def with_base(self, base: str) -> PositivesSpec:
        return PositivesSpec(self.threshold, base)


def is_view(name: str) -> bool:
    return name.startswith(POSITIVES)


def parse_positives(name: str) -> PositivesSpec:
    """The spec of `positives:R:NAME`; NAME is any data name, colons and all (`ml-100k:u1`)."""
    usage = f"{name!r}: expected positives:R:NAME with R a finite number, e.g. positives:4:ml-20m"
    if not name.startswith(POSITIVES):
        raise ValueError(usage)
    text, colon, base = name[len(POSITIVES) :].partition(":")
    if not colon:
        raise ValueError(f"{usage}; there is no data name after the threshold")
    if not _NUMBER.match(text) or not math.isfinite(float(text)):
        raise ValueError(f"{usage}; the threshold {text!r} is not a finite number")
    if not base:
        raise ValueError(f"{usage}; the data name is empty")
    return PositivesSpec(float(text), base)


def base_of(name: str) -> str:
    """The data name under any number of views (`positives:4:positives:3:ml-20m` -> `ml-20m`)."""
    while is_view(name):
        name = parse_positives(name).base
    return name


def source_fingerprint(path: str) -> dict[str, object]:
    """Size and mtime of a file, or of every file of a folder (a Parquet folder of parts)."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    stats = [(str(f.relative_to(p)) if p.is_dir() else "", f.stat()) for f in files]
    return {"path": str(p.resolve()), "files": [[n, s.st_size, s.st_mtime_ns] for n, s in stats]}


@dataclass(frozen=True)
class Counts:
    ratings: int
    users: int
    items: int


class _Distinct:
    """The number of distinct ids seen, from each batch's unique ids merged as they pile up."""

    def __init__(self) -> None:
        self.merged = np.empty(0, np.int32)
        self.parts: list[np.ndarray] = []
        self.pending = 0

    def add(self, ids: np.ndarray) -> None:
        part = np.unique(ids)
        self.parts.append(part)
        self.pending += len(part)
        if self.pending > max(len(self.merged), BATCH):  # amortized: each id is merged O(log) times
            self._merge()

    def _merge(self) -> None:
        self.merged = np.unique(np.concatenate([self.merged, *self.parts]))
        self.parts, self.pending = [], 0

    def count(self) -> int:
        self._merge()
        return len(self.merged)


def batches(path: str) -> Iterator[pa.RecordBatch]:
    """The ratings of `path`, a batch at a time: a Parquet file or folder streamed (its ids and ratings
    checked as `read_parquet_ratings` does), else a study-format file read with the full check."""
    if not path.rstrip("/").endswith(".parquet"):
        frame = read_ratings(path).frame  # a user's own text file: every line checked, the bad one named
        yield from pa.Table.from_pandas(frame[list(COLUMNS)], preserve_index=False).to_batches(BATCH)
        return
    found = parquet.filesystem(path)
    if found is None:
        raise BadInputError(path, "no file system pyarrow can read this path with")
    fs, where = found
    dataset = parquet.open_ratings(path, fs, where)
    try:
        # File by file, in the dataset's order: the dataset scanner's readahead ran ahead of the slower
        # CSV writer (Arrow's pool peaked at 240 MB for 19M ratings); this way it stays near 55 MB at any size.
        files = (pq.ParquetFile(fs.open_input_file(fragment.path)) for fragment in dataset.get_fragments())
        for batch in (b for f in files for b in f.iter_batches(batch_size=BATCH, columns=list(COLUMNS))):
            if not parquet.valid_ratings(batch.column(RATING)).all():
                raise BadInputError(path, parquet.RATINGS_PROBLEM)
            if not all(parquet.valid_ids(batch.column(c)).all() for c in (USER, ITEM)):
                raise BadInputError(path, parquet.IDS_PROBLEM)
            yield batch
    except (pa.ArrowInvalid, OSError) as error:
        raise BadInputError(path, parquet.not_a_table(error)) from None


def positives(batch: pa.RecordBatch, threshold: float) -> pa.Table:
    """The rows of `batch` rated at least `threshold` (compared as float32), each rated 1."""
    ratings = pc.cast(batch.column(RATING), pa.float32(), safe=False)
    kept = batch.filter(pc.greater_equal(ratings, pa.scalar(threshold, pa.float32())))
    users, items = (pc.cast(kept.column(c), pa.int32()) for c in (USER, ITEM))  # checked in range
    ones = pa.array(np.ones(kept.num_rows, np.float32))
    return pa.Table.from_arrays([users, items, ones], schema=SCHEMA)


def write_view(source: str, threshold: float, csv: Path, parquet_path: Path) -> Counts:
    """Write the positives of `source` as the study's CSV and as Parquet (each to a temporary name,
    renamed when whole), a row group at a time; the counts of what was kept."""
    tmps = csv.with_name(csv.name + ".tmp"), parquet_path.with_name(parquet_path.name + ".tmp")
    try:
        counts = _write_all(source, threshold, *tmps)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    if counts.ratings == 0:
        for tmp in tmps:
            tmp.unlink()
        raise ValueError(f"{source}: no rating is at least {threshold!r}, so the view keeps none")
    tmps[0].replace(csv)
    tmps[1].replace(parquet_path)
    return counts


def _write_all(source: str, threshold: float, csv: Path, parquet_path: Path) -> Counts:
    users, items = _Distinct(), _Distinct()
    ratings = 0
    options = pacsv.WriteOptions(include_header=False)
    with (pq.ParquetWriter(str(parquet_path), SCHEMA) as pw,
          pacsv.CSVWriter(str(csv), SCHEMA, write_options=options) as cw):
        pending: list[pa.Table] = []
        for batch in batches(source):
            table = positives(batch, threshold)
            if table.num_rows == 0:
                continue
            users.add(table.column(USER).to_numpy())
            items.add(table.column(ITEM).to_numpy())
            pending.append(table)
            ratings += table.num_rows
            if sum(t.num_rows for t in pending) >= BATCH:
                _write(pa.concat_tables(pending), pw, cw)
                pending = []
        if pending:
            _write(pa.concat_tables(pending), pw, cw)
    return Counts(ratings, users.count(), items.count())


def _write(table: pa.Table, pw: pq.ParquetWriter, cw: pacsv.CSVWriter) -> None:
    pw.write_table(table, row_group_size=max(table.num_rows, 1))
    cw.write_table(table)
