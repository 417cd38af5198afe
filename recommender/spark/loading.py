"""Reading a study-format ratings file (`user,item,rating`) into Spark, with bad lines named.

Both loaders parse and count in one forced pass, then count distinct (user, item) pairs, unless the
job says the pairs are known to be unique (`Job.unique_pairs`: a conversion this suite validated when
it made it; a user's own file is always counted). Only when
that finds anything wrong is the file read again line by line under the exact rules of
`recommender.data.formats`, which number the lines: the error names the first bad line or, when
skipping is allowed, the bad lines are counted and a few kept as examples for the result line.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]  # py4j ships no stubs
from pyspark import RDD
from pyspark.errors import AnalysisException
from pyspark.mllib.recommendation import Rating
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import FloatType, IntegerType, StructField, StructType

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.formats import (
    RATING_LIMIT,
    STUDY_CSV,
    WHITESPACE,
    BadInputError,
    is_blank,
    line_problem,
    parse_line,
    repeat_problem,
)
from recommender.data.readers import MAX_REPORTED, check_readable

Row3 = tuple[int, int, float]
RATINGS_SCHEMA = StructType(
    [StructField(USER, IntegerType()), StructField(ITEM, IntegerType()), StructField(RATING, FloatType())]
)
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"
# The characters of a blank line (formats.is_blank): up to U+0020.
BLANK_CHARS = "".join(map(chr, range(0x21)))


@dataclass
class Loaded:
    """Counts from the load pass, shared by both APIs."""

    ratings: int
    skipped: int
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Checked:
    """The exact rules' verdict on a whole file: the bad lines numbered from 1, and the valid
    ratings (`rows`, sorted back into file order only where bad lines are skipped)."""

    valid: RDD[tuple[int, Row3]]  # (line, rating): every line the rules take on its own
    repeats: RDD[tuple[int, str]]  # (line, problem): each later line of a repeated (user, item) pair
    good: int
    bad: int
    found: list[tuple[int, str]]  # the first MAX_REPORTED bad lines

    def rows(self) -> RDD[Row3]:
        """The valid ratings in file order, each repeated pair's later lines left out."""
        return self.valid.subtractByKey(self.repeats).sortByKey().values()  # type: ignore[call-overload]


def check_source(path: str) -> None:
    """Fail early, naming the file, when a local input is missing or empty."""
    scheme = urlparse(path).scheme
    if scheme in ("", "file"):
        check_readable(urlparse(path).path if scheme else path)


def _repeats(pair: tuple[tuple[int, int], Iterable[int]]) -> list[tuple[int, str]]:
    (user, item), lines = pair
    first, *later = sorted(lines)
    return [(line, repeat_problem(user, item, first)) for line in later]


def _tally(entries: Iterable[tuple[int, tuple[int, str] | None]]) -> Iterator[tuple[int, int, list[tuple[int, str]]]]:
    """One partition's (good, bad, first MAX_REPORTED bad lines) from `check_lines`' entries, each
    a change to the good count and the line's problem, if any."""
    good, bad, first = 0, 0, []
    for change, problem in entries:
        good += change
        if problem is not None:
            bad += 1
            first.append(problem)
            if len(first) > 2 * MAX_REPORTED:
                first = heapq.nsmallest(MAX_REPORTED, first)
    yield good, bad, heapq.nsmallest(MAX_REPORTED, first)


def check_lines(spark: SparkSession, path: str) -> Checked:
    """Every line under the exact rules, repeated (user, item) pairs included; for files found wrong.
    The counts and the first bad lines come from one job over the lines and one over the repeats
    (besides the line numbering's): a bad file's error costs little more than reading it."""
    fmt = STUDY_CSV
    numbered = spark.sparkContext.textFile(path).zipWithIndex().map(lambda p: (p[1] + 1, p[0]))
    lines = numbered.filter(lambda p: not is_blank(p[1]))
    verdicts = lines.map(lambda p: (p[0], line_problem(p[1], fmt) or "", p[1])).cache()  # "": valid
    valid = verdicts.filter(lambda v: not v[1]).map(lambda v: (v[0], parse_line(v[2], fmt)))
    repeats = valid.map(lambda v: ((v[1][0], v[1][1]), v[0])).groupByKey().flatMap(_repeats).cache()
    # Each tally a pipelined job of its own: a union of the two costs several times more here.
    tallies = verdicts.map(lambda v: (0, (v[0], v[1])) if v[1] else (1, None)).mapPartitions(_tally).collect()
    tallies += repeats.map(lambda r: (-1, r)).mapPartitions(_tally).collect()  # a repeat was counted valid
    found = heapq.nsmallest(MAX_REPORTED, (problem for _, _, first in tallies for problem in first))
    return Checked(valid, repeats, sum(t[0] for t in tallies), sum(t[1] for t in tallies), found)


def _finish(spark: SparkSession, path: str, skip_bad_rows: bool) -> tuple[Checked, Loaded]:
    """The exact pass over a file the fast pass found wrong: an error, or the ratings left after skipping."""
    checked = check_lines(spark, path)
    if checked.bad == 0 and checked.good == 0:
        raise BadInputError(path, "no ratings (the file is empty)")
    if checked.bad and (not skip_bad_rows or checked.good == 0):
        line, problem = checked.found[0]
        problem = problem if checked.good else f"{problem}; no valid ratings at all"
        raise BadInputError(path, problem, line=line, skipped=checked.bad)
    return checked, Loaded(checked.good, checked.bad, [f"line {n}: {p}" for n, p in checked.found])


def _pair_key(user: Column, item: Column) -> Column:
    return user.cast("long") * (1 << 32) + item.cast("long")


def load_rdd(
    spark: SparkSession, path: str, skip_bad_rows: bool, unique_pairs: bool = False
) -> tuple[RDD[Rating], Loaded]:
    """Ratings as a cached RDD of mllib `Rating`, parsed in Python as the study did.

    `unique_pairs`: the pairs are known to be unique (`Job.unique_pairs`), so no distinct count.
    """
    check_source(path)
    fmt = STUDY_CSV

    def parse(line: str) -> Rating | None:
        if line_problem(line, fmt) is not None:
            return None
        return Rating(*parse_line(line, fmt))

    lines = spark.sparkContext.textFile(path).filter(lambda line: not is_blank(line))
    parsed = lines.map(parse).cache()
    good, bad = parsed.map(lambda r: (0, 1) if r is None else (1, 0)).fold(
        (0, 0), lambda a, b: (a[0] + b[0], a[1] + b[1])
    )
    ratings = parsed.flatMap(lambda r: [] if r is None else [r])
    if good and not bad and (
        unique_pairs or ratings.map(lambda r: (r.user << 32) + r.product).distinct().count() == good
    ):
        return ratings, Loaded(good, 0)
    parsed.unpersist()
    checked, loaded = _finish(spark, path, skip_bad_rows)
    exact = checked.rows().map(lambda t: Rating(*t)).cache()
    exact.count()  # the load phase includes the exact parse
    return exact, loaded


def _trim(text: Column) -> Column:
    """Strip the same characters as `formats.WHITESPACE` (SQL's trim alone takes only spaces)."""
    return F.trim(text, F.lit(WHITESPACE))


def _digits(value: Column) -> Column:
    """How many decimal digits a non-negative int has (1 for 0): comparisons only, nothing allocated."""
    count = F.when(value < 10, 1)
    for n in range(2, 10):
        count = count.when(value < 10**n, n)
    return count.otherwise(10)


def _sure_id(text: Column) -> tuple[Column, Column]:
    """(value, sure): sure only where `text` is certainly a valid id.

    Written as Spark writes the int back (`42`), as nearly every file does, it is sure when its
    bytes are exactly its value's digits: Spark's cast takes only ASCII digits, a sign, a fraction and
    surrounding whitespace, each of which adds a byte, so no string is made for the comparison.
    Otherwise (spaces, leading zeros) the value is read again from the trimmed text with zeros
    stripped. Never wrong the other way: a valid id it is unsure of ("-0") only sends the file to
    the exact pass.
    """
    value = text.try_cast("int")
    plain = (value >= 0) & (F.octet_length(text) == _digits(value))
    trimmed = _trim(text)
    digits = F.ltrim(trimmed, F.lit("0"))
    again = trimmed.try_cast("int")
    padded = (again.cast("string") == digits) | ((again == 0) & (digits == "") & (trimmed != ""))
    return F.when(plain, value).otherwise(again), F.when(plain, True).otherwise((again >= 0) & padded)


def _ends_in(text: Column, chars: str) -> Column:
    """Whether `text` ends in one of `chars`: one byte compared each, nothing allocated."""
    ends = text.endswith(chars[0])
    for char in chars[1:]:
        ends = ends | text.endswith(char)
    return ends


def _sure_rating(text: Column) -> tuple[Column, Column]:
    """(value, sure): a decimal within formats.RATING_LIMIT, surrounded by nothing but `formats.WHITESPACE`.

    Java's double parser, which Spark's cast uses, takes the grammar of formats.FLOAT_PATTERN, and
    besides it only: characters up to U+0020 around the number, a type suffix (`4d`), hexadecimal
    (`0x1p2`), NaN and Infinity (not finite: the bound rejects them). A text that starts above U+0020,
    ends in a digit or a point and holds no `x` is therefore a decimal, settled by byte compares.
    Otherwise (spaces around it, say) only the pattern's characters and that whitespace are allowed.
    """
    value = text.try_cast("double")
    bounded = F.abs(value) <= RATING_LIMIT
    plain = (text >= "!") & _ends_in(text, "0123456789.") & ~text.contains("x") & ~text.contains("X")
    allowed = F.translate(text, "0123456789.eE+-" + WHITESPACE, "") == ""
    return value, F.when(plain, bounded).otherwise(allowed & bounded)


@contextmanager
def uncompressed_cache(spark: SparkSession) -> Iterator[None]:
    """DataFrame caches built inside are held uncompressed, unless the session sets CACHE_COMPRESSED
    itself: Spark tries each encoder on every value, which cost 4 to 10 s of a 20M-rating load on 2
    cores, for 243 MB held against 151 MB. (Spark reads the setting when it first fills a cache.)"""
    if spark.conf.get(CACHE_COMPRESSED, None) is not None:
        yield
        return
    spark.conf.set(CACHE_COMPRESSED, "false")
    try:
        yield
    finally:
        spark.conf.unset(CACHE_COMPRESSED)


def _fields(line: Column) -> tuple[Column, Column, Column, Column]:
    """(user, item, rating, three) of a text line: the text before its first comma, between its first
    two, and after its last; `three` where those are all of it (exactly two commas), by byte lengths."""
    user = F.substring_index(line, ",", 1)
    item = F.substring_index(F.substring_index(line, ",", 2), ",", -1)
    rating = F.substring_index(line, ",", -1)
    three = F.octet_length(user) + F.octet_length(item) + F.octet_length(rating) + 2 == F.octet_length(line)
    return user, item, rating, three


def _blank(line: Column) -> Column:
    """formats.is_blank: a line that starts above U+0020 is settled by one byte compare."""
    return F.when(line >= "!", False).otherwise(F.trim(line, F.lit(BLANK_CHARS)) == "")


def fast_pass(spark: SparkSession, path: str) -> DataFrame:
    """The file's non-blank lines through Spark's text reader, lazily: (ok, user int, item int, rating
    float) per line; bad rows keep whatever their casts gave, only the rows with `ok` are ever read.
    The fields are cut out of the line's bytes with `substring_index`: Spark's CSV reader (univocity)
    made Java strings of them first."""
    line = F.col("value")
    user_text, item_text, rating_text, three = _fields(line)
    user, sure_user = _sure_id(user_text)
    item, sure_item = _sure_id(item_text)
    rating, sure_rating = _sure_rating(rating_text)
    ok = F.coalesce(three & sure_user & sure_item & sure_rating, F.lit(False))
    lines = spark.read.text(path).filter(~_blank(line))
    return lines.select(ok.alias("ok"), user.alias(USER), item.alias(ITEM), rating.cast("float").alias(RATING))


def load_df(
    spark: SparkSession, path: str, skip_bad_rows: bool, unique_pairs: bool = False
) -> tuple[DataFrame, Loaded]:
    """Ratings as a cached DataFrame (user int, item int, rating float), parsed from Spark's text reader.

    `unique_pairs`: the pairs are known to be unique (`Job.unique_pairs`), so no distinct count.
    """
    check_source(path)
    with uncompressed_cache(spark):
        parsed = fast_pass(spark, path).cache()
        row = parsed.agg(F.count("*").alias("n"), F.count_if("ok").alias("good")).first()
    assert row is not None
    good, bad = row["good"], row["n"] - row["good"]
    ratings = parsed.filter("ok").select(USER, ITEM, RATING)
    if good and not bad and (
        unique_pairs or ratings.select(_pair_key(F.col(USER), F.col(ITEM))).distinct().count() == good
    ):
        return ratings, Loaded(good, 0)
    parsed.unpersist()
    return _exact_df(spark, path, skip_bad_rows)


def caused_by(error: Py4JJavaError, java_class: str) -> bool:
    """Whether a Java exception of class `java_class` is in the cause chain of `error`."""
    cause = error.java_exception
    while cause is not None:
        if cause.getClass().getName() == java_class:
            return True
        cause = cause.getCause()
    return False


def _exact_df(spark: SparkSession, path: str, skip_bad_rows: bool) -> tuple[DataFrame, Loaded]:
    """The exact pass's verdict as a cached DataFrame: an error, or the ratings left after skipping."""
    checked, loaded = _finish(spark, path, skip_bad_rows)
    with uncompressed_cache(spark):
        exact = spark.createDataFrame(checked.rows(), RATINGS_SCHEMA).cache()
        exact.count()  # the load phase includes the exact parse
    return exact, loaded


def is_parquet(path: str) -> bool:
    """A `.parquet` file or folder: this suite's Parquet conversion, not the study's text."""
    return path.rstrip("/").endswith(".parquet")


def read_parquet(spark: SparkSession, path: str) -> DataFrame:
    """A Parquet conversion's (user int, item int, rating float), read lazily and not yet checked."""
    if urlparse(path).scheme in ("", "file") and not Path(urlparse(path).path).exists():
        raise BadInputError(path, "file does not exist")
    try:
        table = spark.read.parquet(path)
        return table.select(F.col(USER).cast("int").alias(USER), F.col(ITEM).cast("int").alias(ITEM),
                            F.col(RATING).cast("float").alias(RATING))
    except AnalysisException as error:
        raise BadInputError(path, f"not a Parquet table with columns {USER}, {ITEM}, {RATING} ({error})") from None


def parquet_row_ok() -> Column:
    """True for a row of `read_parquet` that is a rating: ids non-negative, |rating| within formats.RATING_LIMIT."""
    # NaN fails the bound as well: Spark orders NaN above every number.
    good = (F.col(USER) >= 0) & (F.col(ITEM) >= 0) & (F.abs(F.col(RATING)) <= RATING_LIMIT)
    return F.coalesce(good, F.lit(False))


def bad_parquet_rows(bad: int) -> str:
    """The problem of a Parquet table with `bad` rows that `parquet_row_ok` rejects."""
    return f"{bad} rows with a negative or missing id or a rating past {RATING_LIMIT:g} in magnitude"


def load_parquet(spark: SparkSession, path: str) -> tuple[DataFrame, Loaded]:
    """A Parquet conversion of this suite's (user, item, rating), as a cached DataFrame, checked as a
    whole in one pass: the three columns, ids non-negative 32-bit integers, ratings within formats.RATING_LIMIT.
    (Its lines were checked one by one when it was made; `read_parquet_ratings` does the same.)"""
    with uncompressed_cache(spark):
        ratings = read_parquet(spark, path).cache()
        row = ratings.agg(F.count("*").alias("n"), F.sum(parquet_row_ok().cast("long")).alias("ok")).first()
    assert row is not None
    if not row["n"]:
        raise BadInputError(path, "no ratings (the table is empty)")
    if row["ok"] != row["n"]:
        raise BadInputError(path, bad_parquet_rows(row["n"] - row["ok"]))
    return ratings, Loaded(row["n"], 0)


def load_ratings(
    spark: SparkSession, path: str, skip_bad_rows: bool, unique_pairs: bool = False
) -> tuple[DataFrame, Loaded]:
    """`load_parquet` for a `.parquet` file or folder, else `load_df` on the study's text."""
    if is_parquet(path):
        return load_parquet(spark, path)
    return load_df(spark, path, skip_bad_rows, unique_pairs)


SINGULAR = "org.apache.spark.ml.optim.SingularMatrixException"


def singular_fit(rank: int, reg: float) -> str:
    """The problem when MLlib's solver finds a normal matrix singular (Scala: Loading.singularFit)."""
    return (f"ALS could not fit these ratings at rank {rank} with --reg {reg:g}: a normal matrix is singular "
            "(ratings of very different magnitudes, or too little regularization); try a larger --reg")


def no_training_left(holdout: float) -> str:
    """The problem when the holdout split leaves nothing to fit (a tiny file, a large fraction)."""
    return f"no ratings left for training after holding out a fraction {holdout:g} of them"
