"""How big a cluster a grid needs: a node's cores and memory, and the memory MLlib's ALS holds per rating.

The rule is measured, not modelled: during a DataFrame ALS fit on the synthetic ml-20m shape
(rank 10, 10 iterations, `local[2]`), Spark's storage info (`getRDDStorageInfo`, polled) peaked at
736 MB for 20.0M ratings, 36.8 bytes per rating: the cached input (7.7), ALS's rating blocks
(12.0), the in-blocks of both sides (16.0), the out-blocks and the factors; `python -m
experiments.als_memory` measures it again. Executors need that much of their storage memory,
which Spark sizes at `STORAGE_SHARE` of their heap, and YARN hands executors about `YARN_SHARE`
of a node's memory on EMR's defaults (m5.2xlarge: 24 of 32 GiB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from emr import cost
from emr.spec import ClusterOptions

CACHED_BYTES_PER_RATING = 37.0  # measured: see the module docstring
STORAGE_SHARE = 0.6 * 0.5  # spark.memory.fraction, and at least the storage half of it under pressure
YARN_SHARE = 0.75
OVERHEAD_SHARE = 0.1  # spark.executor.memoryOverhead's default, on top of the heap
GIB = 2**30


@dataclass(frozen=True)
class Node:
    """One core node: its vCPUs and memory, from the price table."""

    instance_type: str
    vcpus: int
    memory_gib: float

    @property
    def executor_memory_gib(self) -> int:
        """The heap of one executor that fills YARN's share of the node, with its overhead beside it."""
        return max(1, math.floor(self.memory_gib * YARN_SHARE / (1 + OVERHEAD_SHARE)))


def node(options: ClusterOptions, prices: Path = cost.PRICES) -> Node:
    entry = cost.load_prices(prices)["instances"].get(options.worker_type)
    if entry is None or "vcpus" not in entry or "memory_gib" not in entry:
        raise cost.PriceError(f"no vcpus or memory_gib for {options.worker_type} in {prices}; add them")
    return Node(options.worker_type, int(entry["vcpus"]), float(entry["memory_gib"]))


def heap_needed_gib(ratings: int) -> float:
    """The executor heap, summed over the cluster, that MLlib's ALS needs for `ratings`."""
    return ratings * CACHED_BYTES_PER_RATING / STORAGE_SHARE / GIB


def nodes_needed(ratings: int, of: Node) -> int:
    """Core nodes of type `of` whose executors together hold ALS on `ratings` in memory."""
    return max(1, math.ceil(heap_needed_gib(ratings) / of.executor_memory_gib))


def shortfall(ratings: dict[str, int], options: ClusterOptions, of: Node) -> str | None:
    """Why the cluster is too small for the largest data set, with the fix; None when it fits."""
    if not ratings:
        return None
    name, largest = max(ratings.items(), key=lambda item: item[1])
    need = nodes_needed(largest, of)
    if need <= options.core_count:
        return None
    return (f"{name} ({largest:,} ratings) needs about {heap_needed_gib(largest):.0f} GiB of executor heap "
            f"for MLlib's ALS ({CACHED_BYTES_PER_RATING:.0f} cached bytes per rating, measured); "
            f"{options.core_count} x {of.instance_type} give {options.core_count * of.executor_memory_gib} GiB: "
            f"use --core-count {need} or a larger --core-type")
