"""Compact ids: indices and lookups that invert each other, in place or not, dense or sparse id ranges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender.ids import compact, distinct_count, lookup

pytestmark = pytest.mark.unit


@given(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=50))
def test_compact_and_lookup_are_inverse(ids: list[int]) -> None:
    values = np.array(ids, dtype=np.int64)
    distinct, index = compact(values)
    assert list(distinct) == sorted(set(ids))
    assert (distinct[index] == values).all()
    assert (lookup(distinct, values) == index).all()
    assert lookup(distinct, np.array([-1], dtype=np.int64))[0] == -1
    in_place = values.astype(np.int32)  # the indices written over the ids themselves
    again, written = compact(in_place, out=in_place)
    assert written is in_place and np.array_equal(again, distinct) and np.array_equal(in_place, index)


@pytest.mark.parametrize("ids", [[3, 1, 3, 7], [5, 2**30, 5]])  # a dense range, and a sparse one (sorted)
def test_distinct_count_counts_each_id_once(ids: list[int]) -> None:
    assert distinct_count(np.array(ids, dtype=np.int64)) == len(set(ids))
