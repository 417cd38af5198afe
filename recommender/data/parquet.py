"""This suite's Parquet ratings (user, item, rating) as pyarrow reads them, on any file system it
has a driver for (a local path, file://, s3://, gs://, hdfs:// where libhdfs is installed): the
table checked as a whole, its row groups listed, and each row's verdict. No pyspark here: the
single-node engine and torch-spark's routing tasks share these rules."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from recommender.data.columns import COLUMNS
from recommender.data.formats import INT32_MAX, RATING_LIMIT, BadInputError

IDS_PROBLEM = "user and item ids must be non-negative 32-bit integers"
RATINGS_PROBLEM = f"ratings must be finite numbers at most {RATING_LIMIT:g} in magnitude"
UNBUFFERED = pads.ParquetFragmentScanOptions(pre_buffer=False)  # column chunks read as they are decoded


@dataclass(frozen=True)
class RowGroup:
    """One row group of one file, the unit a task reads."""

    path: str  # within its file system
    index: int


def filesystem(uri: str) -> tuple[pafs.FileSystem, str] | None:
    """The file system pyarrow opens `uri` with and the path within it, or None where pyarrow has
    no driver for its scheme (s3a://, or hdfs:// without libhdfs): Spark's own reader then reads it."""
    if not urlparse(uri).scheme:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError):
        return None


def not_a_table(error: Exception) -> str:
    """The problem of a file that pyarrow cannot read as this suite's table."""
    return f"not a Parquet table with columns {', '.join(COLUMNS)} ({error})"


def open_ratings(uri: str, fs: pafs.FileSystem, where: str) -> pads.Dataset:
    """The Parquet file or folder at `where`, its columns checked present and typed (integer ids,
    numeric ratings): else a BadInputError naming `uri`."""
    if fs.get_file_info(where).type == pafs.FileType.NotFound:
        raise BadInputError(uri, "file does not exist")
    try:
        dataset = pads.dataset(where, filesystem=fs, format="parquet", partitioning="hive")
        missing = [name for name in COLUMNS if dataset.schema.get_field_index(name) < 0]
        if missing:
            raise KeyError(f"no column {', '.join(missing)}")
    except (pa.ArrowInvalid, OSError, KeyError) as error:
        raise BadInputError(uri, not_a_table(error)) from None
    types = [dataset.schema.field(name).type for name in COLUMNS]
    if not all(pa.types.is_integer(t) for t in types[:2]):
        raise BadInputError(uri, IDS_PROBLEM)
    if not (pa.types.is_integer(types[2]) or pa.types.is_floating(types[2])):
        raise BadInputError(uri, RATINGS_PROBLEM)
    return dataset


def row_groups(uri: str, dataset: pads.Dataset) -> list[RowGroup]:
    """Every row group of the dataset's files, from their footers."""
    try:
        return [RowGroup(fragment.path, index)
                for fragment in dataset.get_fragments() for index in range(fragment.metadata.num_row_groups)]
    except (pa.ArrowInvalid, OSError) as error:
        raise BadInputError(uri, not_a_table(error)) from None


def valid_ids(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True for each id present and a non-negative 32-bit integer."""
    inside = pc.and_(pc.greater_equal(column, 0), pc.less_equal(column, INT32_MAX))
    return np.asarray(pc.fill_null(inside, False), dtype=np.bool_)


def valid_ratings(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True for each rating present and at most RATING_LIMIT in magnitude (NaN is not)."""
    inside = pc.and_(pc.greater_equal(column, -RATING_LIMIT), pc.less_equal(column, RATING_LIMIT))
    return np.asarray(pc.fill_null(inside, False), dtype=np.bool_)
