"""The text formats of ratings files and the one set of rules that decides whether a line is valid.

Every reader (pandas on the driver, the Spark RDD and DataFrame loaders) applies these same
rules, so a bad line gets the same message wherever it is read. The rules:

- exactly the format's fields; ids non-negative 32-bit integers written `-?[0-9]+`; the rating a
  finite decimal of magnitude at most 1e18 (`RATING_LIMIT`): its square, which every solver and
  metric forms (torch in float32), stays finite; a rating near float32's limit (3e38) used to pass
  and then broke MLlib's solver with a stack trace;
- spaces, tabs and carriage returns around a field are ignored; no quoting;
- a blank line (nothing but characters up to U+0020, Spark's `trim`) is ignored wherever it is;
- a (user, movie) pair rated a second time is a bad line, named with the line of the first rating;
  with skipping allowed the first rating is kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

INT32_MAX = 2**31 - 1
# The largest rating magnitude: a square (1e36) stays well inside float32 (FLT_MAX is about 3.4e38).
RATING_LIMIT = 1e18

# Java and Python read these two patterns the same way, so Spark SQL's `rlike` and `re` agree.
INT_PATTERN = r"^-?[0-9]+$"
FLOAT_PATTERN = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
WHITESPACE = " \t\r"  # trimmed around every field (a CRLF file leaves \r in the last one)
_INT_RE = re.compile(INT_PATTERN)
_FLOAT_RE = re.compile(FLOAT_PATTERN)


@dataclass(frozen=True)
class RatingsFormat:
    """How a ratings file is laid out: field separator, header line, and fields per line."""

    sep: str
    header: bool
    fields: int

    def describe(self) -> str:
        header = "with a header" if self.header else "no header"
        return f"{self.fields} fields separated by {self.sep!r}, {header}"


# The original study's input: userId,movieId,rating with no header and no timestamp.
STUDY_CSV = RatingsFormat(sep=",", header=False, fields=3)
ML_100K_TSV = RatingsFormat(sep="\t", header=False, fields=4)
ML_DAT = RatingsFormat(sep="::", header=False, fields=4)
ML_CSV = RatingsFormat(sep=",", header=True, fields=4)


class BadInputError(ValueError):
    """Input that cannot be used: names the file and, where there is one, the line."""

    def __init__(self, path: str, problem: str, line: int | None = None, skipped: int = 0) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        where = f"{path}, line {line}" if line is not None else path
        more = f" ({skipped} bad lines in all)" if skipped > 1 else ""
        super().__init__(f"{where}: {problem}{more}")


def check_id(text: str, what: str) -> str | None:
    """The problem with one id field, or None if it is a valid non-negative 32-bit integer."""
    text = text.strip(WHITESPACE)
    if not _INT_RE.match(text):
        return f"{what} {text!r} is not an integer"
    value = int(text)
    if value < 0:
        return f"{what} {value} is negative"
    if value > INT32_MAX:
        return f"{what} {value} is out of range (ids must fit a 32-bit integer)"
    return None


def check_rating(text: str) -> str | None:
    """The problem with a rating field, or None if it is a decimal number of magnitude at most RATING_LIMIT."""
    text = text.strip(WHITESPACE)
    if not _FLOAT_RE.match(text):
        return f"rating {text!r} is not a finite number"
    value = float(text)
    if not math.isfinite(value):
        return f"rating {text!r} is not a finite number"
    if abs(value) > RATING_LIMIT:
        return f"rating {text!r} is out of range (ratings must be at most {RATING_LIMIT:g} in magnitude)"
    return None


def is_blank(line: str) -> bool:
    """Whether a line is ignored: empty or only characters up to U+0020 (Java's `String.trim` leaves nothing)."""
    return all(c <= " " for c in line)


def repeat_problem(user: int, item: int, first_line: int) -> str:
    """The message for a (user, movie) pair rated again; `first_line` is where it was rated first."""
    return f"user {user} rated movie {item} again (first on line {first_line})"


def line_problem(line: str, fmt: RatingsFormat) -> str | None:
    """Why one data line is invalid under `fmt`, or None if it is valid."""
    parts = line.split(fmt.sep)
    if len(parts) != fmt.fields:
        return f"expected {fmt.fields} fields separated by {fmt.sep!r}, found {len(parts)}"
    return check_id(parts[0], "user id") or check_id(parts[1], "movie id") or check_rating(parts[2])


def parse_line(line: str, fmt: RatingsFormat) -> tuple[int, int, float]:
    """(user, item, rating) of a line already known to be valid."""
    parts = line.split(fmt.sep)
    return int(parts[0]), int(parts[1]), float(parts[2])
