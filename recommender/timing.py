"""Wall-clock timing of the named phases of a run."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = ("load", "fit", "predict", "evaluate")


class PhaseTimer:
    """Seconds per phase; each phase's body must end with a Spark action so its work is inside."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; phases are {PHASES}")
        # The stderr markers let a driver log (spark-rapids' explain output) be split by phase.
        print(f"ALS_PHASE {name} begin", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            print(f"ALS_PHASE {name} end", file=sys.stderr, flush=True)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())
