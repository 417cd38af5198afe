"""User and item ids as compact indices 0..n-1: the one way every single-process engine and each
torch-spark task index them, in linear time where the id range is dense."""

from __future__ import annotations

import numpy as np

_BLOCK = 2**22  # ids compacted in place this many at a time
_SPARSE = 50  # an id range over this many times the ids' count is sorted instead of looked up


def compact(ids: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct ids, each id's index among them), in linear time for dense id ranges. With
    `out` (int32, as long as `ids`; `ids` itself will do) the indices are written there, a block at a time."""
    top = int(ids.max()) if len(ids) else 0
    if top > _SPARSE * max(len(ids), 1):  # sparse id space: sort instead of a lookup table
        distinct, index = np.unique(ids, return_inverse=True)
        if out is None:
            return distinct, index.astype(np.int32)
        out[:] = index
        return distinct, out
    present = np.zeros(top + 1, dtype=bool)
    present[ids] = True
    lookup_table = (np.cumsum(present, dtype=np.int64) - 1).astype(np.int32)
    if out is None:
        return np.flatnonzero(present), lookup_table[ids]
    for start in range(0, len(ids), _BLOCK):
        np.take(lookup_table, ids[start : start + _BLOCK], out=out[start : start + _BLOCK])
    return np.flatnonzero(present), out


def distinct_count(ids: np.ndarray) -> int:
    """How many distinct ids, without sorting a dense id range."""
    top = int(ids.max()) if len(ids) else 0
    if top > _SPARSE * max(len(ids), 1):
        return len(np.unique(ids))
    return int(np.count_nonzero(np.bincount(ids, minlength=top + 1)))


def lookup(distinct: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each of `ids` in sorted `distinct`, or -1 where absent (cold start)."""
    pos = np.searchsorted(distinct, ids).clip(0, max(len(distinct) - 1, 0))
    found = (distinct[pos] == ids) if len(distinct) else np.zeros(len(ids), bool)
    return np.where(found, pos, -1).astype(np.int64)
