"""A seeded holdout split that every implementation computes identically.

Spark's randomSplit depends on partitioning and differs between the RDD and DataFrame APIs, so
it cannot give Python, Scala and Java the same holdout set. Instead each rating is held out when
a hash of (user, item, seed) falls below the fraction. The hash uses only products of numbers
below 2^31 reduced modulo the prime 2^31 - 1, so it never overflows a signed 64-bit integer:
Python, the JVM and Spark SQL (also in ANSI mode) give the same value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np

P = 2_147_483_647  # 2^31 - 1, prime
A, B, C, D = 1_103_515_245, 747_796_405, 1_664_525, 2_891_336_453 % P


Ids = TypeVar("Ids", int, "np.ndarray[Any, Any]")  # one id, or int64 numpy arrays of them


def holdout_hash(user: Ids, item: Ids, seed: int) -> Ids:
    """A value spread evenly over [0, P) for each (user, item, seed), element-wise on int64 arrays."""
    h = (user * A % P + item * B % P + seed % P * C % P) % P
    return (h * h % P * D % P + h) % P


def threshold(fraction: float) -> int:
    """Ratings whose hash is below this are held out."""
    return int(fraction * P)


def is_holdout(user: int, item: int, seed: int, fraction: float) -> bool:
    return holdout_hash(user, item, seed) < threshold(fraction)


def holdout_sql(user_col: str, item_col: str, seed: int) -> str:
    """The same hash as a Spark SQL expression over two integer columns."""
    u, i = f"CAST({user_col} AS BIGINT)", f"CAST({item_col} AS BIGINT)"
    h = f"pmod(pmod({u} * {A}, {P}) + pmod({i} * {B}, {P}) + {seed % P * C % P}, {P})"
    return f"pmod(pmod(pmod({h} * {h}, {P}) * {D}, {P}) + {h}, {P})"
