"""One table of input lines for every reader: pandas, the Spark RDD and DataFrame loaders, Scala and Java.

BAD_LINES: a line and the problem every reader must name for it. Every table below puts its line
after good lines that start with the pair (1, 1), so "repeated pair" repeats the first line.
ACCEPTED: lines every reader must take (the documented acceptances), with the rating read; their
ids (user 9) appear in no good line. Blank lines are ignored everywhere (see formats.py).
"""

from __future__ import annotations

BAD_LINES: dict[str, tuple[str, str]] = {
    "too few fields": ("1,2", "expected 3 fields separated by ',', found 2"),
    "too many fields": ("1,2,3,4", "expected 3 fields separated by ',', found 4"),
    # Past the 20480 columns of Spark's CSV reader (univocity's maxColumns), which threw when the
    # DataFrame loaders used it; the exact pass (plain splitting) names it.
    "more fields than Spark's CSV reader takes": (
        ",".join(["1"] * 30000),
        "expected 3 fields separated by ',', found 30000",
    ),
    "empty field": ("1,,3", "movie id '' is not an integer"),
    "non-numeric rating": ("1,2,good", "rating 'good' is not a finite number"),
    "NaN rating": ("1,2,NaN", "rating 'NaN' is not a finite number"),
    "Infinity rating": ("1,2,Infinity", "rating 'Infinity' is not a finite number"),
    "infinite rating": ("1,2,1e999", "rating '1e999' is not a finite number"),
    "rating too large for float32": (
        "1,2,1e39",
        "rating '1e39' is out of range (ratings must be at most 1e+18 in magnitude)",
    ),
    "negative rating too large for float32": (
        "1,2,-3.5e38",
        "rating '-3.5e38' is out of range (ratings must be at most 1e+18 in magnitude)",
    ),
    "rating near FLT_MAX": (
        "1,2,3e38",
        "rating '3e38' is out of range (ratings must be at most 1e+18 in magnitude)",
    ),
    "rating just past the limit": (
        "1,2,1.0000001e18",
        "rating '1.0000001e18' is out of range (ratings must be at most 1e+18 in magnitude)",
    ),
    "rating with a type suffix": ("1,2,4d", "rating '4d' is not a finite number"),
    "hexadecimal rating": ("1,2,0x1p2", "rating '0x1p2' is not a finite number"),
    "quoted rating": ('1,2,"3"', "rating '\"3\"' is not a finite number"),
    "non-numeric user": ("alice,2,3", "user id 'alice' is not an integer"),
    "fractional movie": ("1,2.5,3", "movie id '2.5' is not an integer"),
    "plus sign on an id": ("+1,2,3", "user id '+1' is not an integer"),
    "quoted id": ('"1",2,3', "user id '\"1\"' is not an integer"),
    "negative user": ("-1,2,3", "user id -1 is negative"),
    "negative movie": ("1,-7,3", "movie id -7 is negative"),
    "out-of-range id": ("1,2147483648,3", "movie id 2147483648 is out of range (ids must fit a 32-bit integer)"),
    "huge id": (
        "99999999999999999999,2,3",
        "user id 99999999999999999999 is out of range (ids must fit a 32-bit integer)",
    ),
    "id ending in NEL": ("1\x85,2,3", "user id '1\\x85' is not an integer"),
    "id ending in a line separator": ("1\u2028,2,3", "user id '1\\u2028' is not an integer"),
    "id in Arabic-Indic digits": ("\u0661,2,3", "user id '\u0661' is not an integer"),
    "id with a vertical tab": ("1\x0b,2,3", "user id '1\\x0b' is not an integer"),
    "repeated pair": ("1,1,2.0", "user 1 rated movie 1 again (first on line 1)"),
}

ACCEPTED: dict[str, tuple[str, tuple[int, int, float]]] = {
    "leading zeros": ("000000000009,2,3", (9, 2, 3.0)),
    "negative zero id": ("9,-0,3", (9, 0, 3.0)),
    "spaces, tabs and a carriage return": (" 9 ,\t3\t, 3.5 \r", (9, 3, 3.5)),
    "signed exponent rating": ("9,4,+.5e1", (9, 4, 5.0)),
    "largest rating": ("9,5,-1e18", (9, 5, -1e18)),
}


def jvm_message(problem: str) -> str:
    """The problem as the JVM prints it: the text between quotes raw, where Python escapes it."""
    return problem.encode("ascii").decode("unicode_escape") if "\\" in problem else problem
