"""Wall-clock timing of the named phases of a run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PHASES = ("load", "fit", "predict", "evaluate", "recommend")


class PhaseTimer:
    """Seconds per phase; each phase's body must end with a Spark action so its work is inside."""

    def __init__(self, emit: Callable[[str], object] | None = None) -> None:
        """`emit` writes the phase markers; default stderr. A PySpark driver passes the JVM's
        System.err, the stream Spark's own log (spark-rapids' explain output) goes to, because
        spark-submit folds the Python driver's stderr into its stdout."""
        self.seconds: dict[str, float] = {}
        self.emit = emit or (lambda line: print(line, file=sys.stderr, flush=True))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; phases are {PHASES}")
        # The stderr markers let a driver log (spark-rapids' explain output) be split by phase.
        self.emit(f"ALS_PHASE {name} begin")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.emit(f"ALS_PHASE {name} end")

    @property
    def total(self) -> float:
        return sum(self.seconds.values())
