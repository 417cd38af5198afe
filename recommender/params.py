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


def _param(default: Any, help: str, flag_type: type, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "type": flag_type, "choices": choices})


SOLVERS = ("cholesky", "cg")  # how each row's normal equations are solved (the torch engines have both)
# The implicit objective's rank, alpha and λ where a run gives none: the best NDCG@10 of the sweep
# `python -m experiments.implicit_sweep` on ml-100k's hashed 80/20 holdout (README, "Implicit feedback").
IMPLICIT_DEFAULTS: dict[str, Any] = {"rank": 64, "alpha": 5.0, "reg": 1.0}


@dataclass(frozen=True)
class ALSParams:
    """ALS hyper-parameters; the defaults are the original study's (rank 8, 15 iterations, 0.01).

    `implicit` is MLlib's `implicitPrefs` exactly (Hu, Koren and Volinsky 2008, as Spark's ALS.scala
    extends it): a rating r is a preference p = 1 where r > 0 (else 0) held with confidence
    c = 1 + alpha·|r|, every unrated pair is a preference 0 with confidence 1, and each row's λ is
    scaled by its count of positive ratings (MLlib's `numExplicits`).
    """

    rank: int = _param(8, "factors per user and item", int)
    iterations: int = _param(15, "ALS iterations", int)
    reg: float = _param(0.01, "regularization (lambda), scaled per row by its number of ratings", float)
    seed: int = _param(42, "initial factors and holdout split", int)
    blocks: int | None = _param(None, "user and item blocks (default: Spark's default parallelism)", int)
    holdout: float = _param(0.0, "fraction of ratings held out for RMSE/MAE; 0 trains on all", float)
    implicit: bool = _param(False, "implicit feedback (MLlib's implicitPrefs): ratings are confidences, "
                            "every unrated pair a preference 0", bool)
    alpha: float = _param(1.0, "implicit feedback: confidence 1 + alpha*|rating| (MLlib's alpha)", float)
    solver: str = _param("cholesky", "each row's normal equations: cholesky (exact) or cg (conjugate gradient, "
                         "warm-started; the torch engines)", str, SOLVERS)
    cg_steps: int = _param(3, "conjugate-gradient steps per row and half-iteration (--solver cg)", int)

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
        if not math.isfinite(self.alpha) or self.alpha < 0:
            raise ValueError(f"alpha must be a finite number at least 0, not {self.alpha}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver {self.solver!r}: expected one of {', '.join(SOLVERS)}")
        if self.cg_steps < 1:
            raise ValueError("cg_steps must be at least 1")

    @classmethod
    def of(cls, given: dict[str, Any]) -> ALSParams:
        """The values `given` (None: not given) over the defaults: the study's, or with `implicit`
        IMPLICIT_DEFAULTS where they differ (the study's rank and λ are an explicit model's)."""
        values = {name: value for name, value in given.items() if value is not None}
        return cls(**((IMPLICIT_DEFAULTS if values.get("implicit") else {}) | values))

    def as_arguments(self) -> list[str]:
        """`--name value` for every field that has a value, and `--name` alone for a true switch:
        what the CLI, the entry script and the Scala and Java programs all parse."""
        args: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                args += [flag(f.name)] if value else []
            elif value is not None:
                args += [flag(f.name), repr(value) if isinstance(value, float) else str(value)]
        return args


def flag(name: str) -> str:
    """The command-line flag of a parameter field."""
    return "--" + name.replace("_", "-")


def param_fields() -> tuple[Any, ...]:
    """The fields of `ALSParams`, in order, each with `metadata['help']`, `metadata['type']` and
    `metadata['choices']` (None for any value); a `bool` field is a switch."""
    return fields(ALSParams)
