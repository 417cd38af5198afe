"""The one machine-readable result line that every implementation prints on stdout.

Format: the prefix `ALS_RESULT ` followed by one JSON object on the same line, with the keys of
`RunResult` (nested objects for params, counts, metrics, phases and spark). Python, Scala and
Java print the same keys; harnesses read only this line and ignore everything else on stdout.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

PREFIX = "ALS_RESULT "
SCHEMA = 1


@dataclass
class Counts:
    ratings: int  # valid ratings read
    skipped_rows: int  # bad lines skipped (only with --skip-bad-rows)
    users: int
    items: int
    train: int
    holdout: int
    train_predictions: int
    holdout_predictions: int  # holdout ratings whose user and item were both seen in training


@dataclass
class Metrics:
    train_mse: float
    holdout_rmse: float | None = None
    holdout_mae: float | None = None


@dataclass
class SparkInfo:
    version: str
    master: str
    app_id: str
    default_parallelism: int


@dataclass
class RunResult:
    impl: str  # python, scala, java
    api: str  # rdd, df
    data: str
    input: str
    input_bytes: int
    params: dict[str, Any]
    counts: Counts
    metrics: Metrics
    phases: dict[str, float]
    spark: SparkInfo
    started_at: str  # UTC, ISO 8601
    skipped_examples: list[str] = field(default_factory=list)
    schema: int = SCHEMA

    def to_line(self) -> str:
        return PREFIX + json.dumps(asdict(self), sort_keys=True, allow_nan=False)


REQUIRED_KEYS = frozenset(
    ("impl", "api", "data", "params", "counts", "metrics", "phases", "spark", "schema")
)


class ResultLineError(ValueError):
    """Output that does not hold exactly one valid result line."""


def parse_result_line(output: str) -> dict[str, Any]:
    """The result of the single `ALS_RESULT` line in `output`, as a dict."""
    lines = [line for line in output.splitlines() if line.startswith(PREFIX)]
    if len(lines) != 1:
        raise ResultLineError(f"expected exactly one {PREFIX.strip()} line, found {len(lines)}")
    try:
        result = json.loads(lines[0][len(PREFIX) :])
    except json.JSONDecodeError as error:
        raise ResultLineError(f"the result line is not valid JSON: {error}") from None
    if not isinstance(result, dict):
        raise ResultLineError("the result line's JSON is not an object")
    missing = REQUIRED_KEYS - result.keys()
    if missing:
        raise ResultLineError(f"the result line lacks {sorted(missing)}")
    if result["schema"] != SCHEMA:
        raise ResultLineError(f"result schema {result['schema']} is not the supported {SCHEMA}")
    return result
