"""Spark's hash of a long (SQL's `hash`, the Murmur3 x86 32-bit hash with seed 42 that
`HashPartitioning` applies), in plain Python: so that the driver can pick, without running a query,
a key that `DataFrame.repartition(n, key)` sends to each partition. Spark's bucketed tables depend
on this hash staying the same; `tests/recommender/spark/test_hash_keys.py` checks it against Spark."""

from __future__ import annotations

SEED = 42  # Spark's Murmur3Hash default seed
_C1, _C2, _MASK = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _mix(h1: int, k1: int) -> int:
    k1 = _rotl(k1 * _C1 & _MASK, 15) * _C2 & _MASK
    return (_rotl(h1 ^ k1, 13) * 5 + 0xE6546B64) & _MASK


def hash_long(value: int, seed: int = SEED) -> int:
    """Spark's `hash(value)` of a bigint: Murmur3_x86_32.hashLong, as a signed 32-bit integer."""
    h1 = _mix(_mix(seed & _MASK, value & _MASK), (value >> 32) & _MASK) ^ 8
    h1 = (h1 ^ (h1 >> 16)) * 0x85EBCA6B & _MASK
    h1 = (h1 ^ (h1 >> 13)) * 0xC2B2AE35 & _MASK
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 >= 1 << 31 else h1


def partition_keys(partitions: int) -> list[int]:
    """For each partition t of `repartition(partitions, key)` on a bigint key, the smallest key that
    Spark's hash partitioning (pmod(hash(key), partitions)) sends to t."""
    keys: dict[int, int] = {}
    key = 0
    while len(keys) < partitions:
        keys.setdefault(hash_long(key) % partitions, key)  # Python's % is pmod for a positive divisor
        key += 1
    return [keys[t] for t in range(partitions)]
