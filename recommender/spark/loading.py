"""Reading a study-format ratings file (`user,item,rating`) into Spark, with bad lines named.

Both loaders parse and count in one forced pass. If any line is bad they either stop with an
error naming the first bad line (found again with exact line numbers) or, when skipping is
allowed, count the bad lines and keep a few examples for the result line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from pyspark import RDD
from pyspark.mllib.recommendation import Rating
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.formats import (
    FLOAT_PATTERN,
    INT32_MAX,
    INT_PATTERN,
    STUDY_CSV,
    WHITESPACE,
    BadInputError,
    line_problem,
    parse_line,
)
from recommender.data.readers import MAX_REPORTED, check_readable


@dataclass
class Loaded:
    """Counts from the load pass, shared by both APIs."""

    ratings: int
    skipped: int
    examples: list[str] = field(default_factory=list)


def check_source(path: str) -> None:
    """Fail early, naming the file, when a local input is missing or empty."""
    scheme = urlparse(path).scheme
    if scheme in ("", "file"):
        check_readable(urlparse(path).path if scheme else path)


def bad_lines(spark: SparkSession, path: str, limit: int) -> list[tuple[int, str]]:
    """(line number, problem) of the first `limit` bad lines, numbered from 1."""
    fmt = STUDY_CSV
    numbered = spark.sparkContext.textFile(path).zipWithIndex()
    described = numbered.map(lambda pair: (pair[1] + 1, line_problem(pair[0], fmt)))
    return described.filter(lambda pair: pair[1] is not None).take(limit)


def _finish(spark: SparkSession, path: str, good: int, bad: int, skip_bad_rows: bool) -> Loaded:
    if bad == 0 and good > 0:
        return Loaded(good, 0)
    if good == 0 and bad == 0:
        raise BadInputError(path, "no ratings (the file is empty)")
    found = bad_lines(spark, path, MAX_REPORTED)
    if not found:
        raise RuntimeError(f"{path}: {bad} lines failed the Spark check but none the line check")
    if not skip_bad_rows or good == 0:
        line, problem = found[0]
        problem = problem if good else f"{problem}; no valid ratings at all"
        raise BadInputError(path, problem, line=line, skipped=bad)
    return Loaded(good, bad, [f"line {n}: {p}" for n, p in found])


def load_rdd(spark: SparkSession, path: str, skip_bad_rows: bool) -> tuple[RDD[Rating], Loaded]:
    """Ratings as a cached RDD of mllib `Rating`, parsed in Python as the study did."""
    check_source(path)
    fmt = STUDY_CSV

    def parse(line: str) -> Rating | None:
        if line_problem(line, fmt) is not None:
            return None
        return Rating(*parse_line(line, fmt))

    parsed = spark.sparkContext.textFile(path).map(parse).cache()
    good, bad = parsed.map(lambda r: (0, 1) if r is None else (1, 0)).fold(
        (0, 0), lambda a, b: (a[0] + b[0], a[1] + b[1])
    )
    loaded = _finish(spark, path, good, bad, skip_bad_rows)
    return parsed.filter(lambda r: r is not None), loaded


def _trim(text: Column) -> Column:
    """Strip the same characters as `ratings_format.WHITESPACE` (SQL's trim takes only spaces)."""
    chars = WHITESPACE.replace("\t", "\\t").replace("\r", "\\r")
    return F.regexp_replace(text, f"^[{chars}]+|[{chars}]+$", "")


def _valid_id(text: Column) -> Column:
    # At most 11 characters keeps the cast from overflowing; longer ids fail the range check anyway.
    return text.rlike(INT_PATTERN) & (F.length(text) <= 11)


def load_df(spark: SparkSession, path: str, skip_bad_rows: bool) -> tuple[DataFrame, Loaded]:
    """Ratings as a cached DataFrame (user int, item int, rating float), parsed in the JVM."""
    check_source(path)
    parts = F.split(F.col("value"), ",", -1)
    # get() gives NULL past the end of a short line, where [] fails under ANSI mode (Spark 4's default).
    u, i, r = (_trim(F.get(parts, k)) for k in range(3))
    user = F.when(_valid_id(u), u.cast("long"))
    item = F.when(_valid_id(i), i.cast("long"))
    rating = F.when(r.rlike(FLOAT_PATTERN), r.cast("double"))
    ok = (
        (F.size(parts) == 3)
        & user.between(0, INT32_MAX)
        & item.between(0, INT32_MAX)
        & ~F.isnan(rating)
        & (F.abs(rating) < float("inf"))
    )
    parsed = (
        spark.read.text(path)
        .select(
            F.coalesce(ok, F.lit(False)).alias("ok"),
            # Cast only valid rows: ANSI mode fails on an int overflow even in a discarded row.
            F.when(ok, user.cast("int")).alias(USER),
            F.when(ok, item.cast("int")).alias(ITEM),
            F.when(ok, rating.cast("float")).alias(RATING),
        )
        .cache()
    )
    row = parsed.agg(
        F.sum(F.col("ok").cast("long")).alias("good"), F.sum((~F.col("ok")).cast("long")).alias("bad")
    ).first()
    assert row is not None
    loaded = _finish(spark, path, row["good"] or 0, row["bad"] or 0, skip_bad_rows)
    return parsed.filter("ok").select(USER, ITEM, RATING), loaded
