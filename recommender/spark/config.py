"""Where a Spark session runs and how: plain data, importable without pyspark (the CLI, the grid and
the tests build it before any JVM starts)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SessionConfig:
    """Where Spark runs and how; `master` None leaves it to spark-submit."""

    master: str | None = "local[2]"
    app_name: str = "als-benchmark"
    driver_memory: str | None = "4g"
    checkpoint_dir: str | None = None  # None: a fresh folder under /tmp, removed at the end
    confs: dict[str, str] = field(default_factory=dict)
