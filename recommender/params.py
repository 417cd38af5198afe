"""The parameters of one ALS run, shared by every implementation.

The one place they are declared: the command-line flags, the arguments passed to spark-submitted
programs and the grid's `[params]` are all derived from `fields(ALSParams)` and their metadata.
A new parameter is one field here plus its option in the parser that the Scala and Java programs
share (`scala/src/main/scala/als/Options.scala`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any


def _param(default: Any, help: str, flag_type: type) -> Any:
    return field(default=default, metadata={"help": help, "type": flag_type})


@dataclass(frozen=True)
class ALSParams:
    """ALS hyper-parameters; the defaults are the original study's (rank 8, 15 iterations, 0.01)."""

    rank: int = _param(8, "factors per user and item", int)
    iterations: int = _param(15, "ALS iterations", int)
    reg: float = _param(0.01, "regularization (lambda), scaled per row by its number of ratings", float)
    seed: int = _param(42, "initial factors and holdout split", int)
    blocks: int | None = _param(None, "user and item blocks (default: Spark's default parallelism)", int)
    holdout: float = _param(0.0, "fraction of ratings held out for RMSE/MAE; 0 trains on all", float)

    def __post_init__(self) -> None:
        if self.rank < 1 or self.iterations < 1:
            raise ValueError("rank and iterations must be at least 1")
        if not math.isfinite(self.reg) or self.reg < 0:
            raise ValueError(f"regularization must be a finite number at least 0, not {self.reg}")
        if self.blocks is not None and self.blocks < 1:
            raise ValueError("blocks must be at least 1")
        if not 0.0 <= self.holdout < 1.0:  # NaN fails this too
            raise ValueError(f"holdout must be in [0, 1), not {self.holdout}")
        if self.seed < 0:
            raise ValueError("seed must not be negative")

    def as_arguments(self) -> list[str]:
        """`--name value` for every field that has a value: what the CLI, the entry script and the
        Scala and Java programs all parse."""
        args: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                args += [flag(f.name), repr(value) if isinstance(value, float) else str(value)]
        return args


def flag(name: str) -> str:
    """The command-line flag of a parameter field."""
    return "--" + name.replace("_", "-")


def param_fields() -> tuple[Any, ...]:
    """The fields of `ALSParams`, in order, each with `metadata['help']` and `metadata['type']`."""
    return fields(ALSParams)
