"""The driver's copy of Spark's hash (`hash_keys`) against Spark's own, and the keys it picks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.spark.hash_keys import hash_long, partition_keys

pytestmark = pytest.mark.spark
LONGS = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=20, deadline=None)
@given(st.lists(LONGS, min_size=1, max_size=50))
def test_the_hash_is_sparks(spark, values: list[int]) -> None:  # type: ignore[no-untyped-def]
    rows = spark.createDataFrame([(v,) for v in values], "v bigint").selectExpr("v", "hash(v) AS h").collect()
    assert [hash_long(row["v"]) for row in rows] == [row["h"] for row in rows]


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 7, 16, 64])
def test_each_key_lands_in_its_partition(spark, partitions: int) -> None:  # type: ignore[no-untyped-def]
    keys = partition_keys(partitions)
    frame = spark.createDataFrame([(k, t) for t, k in enumerate(keys)], "key bigint, t int")
    landed = frame.repartition(partitions, "key").rdd.mapPartitionsWithIndex(
        lambda at, rows: [(row["t"], at) for row in rows]).collect()
    assert sorted(landed) == [(t, t) for t in range(partitions)]
