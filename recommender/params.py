"""The parameters of one ALS run, shared by every implementation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ALSParams:
    """ALS hyper-parameters; the defaults are the original study's (rank 8, 15 iterations, 0.01)."""

    rank: int = 8
    iterations: int = 15
    reg: float = 0.01
    seed: int = 42
    blocks: int | None = None  # None: Spark's default parallelism
    holdout: float = 0.0  # fraction of ratings held out for RMSE/MAE; 0 trains on all

    def __post_init__(self) -> None:
        if self.rank < 1 or self.iterations < 1:
            raise ValueError("rank and iterations must be at least 1")
        if self.reg < 0:
            raise ValueError("regularization must not be negative")
        if self.blocks is not None and self.blocks < 1:
            raise ValueError("blocks must be at least 1")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError("holdout must be in [0, 1)")
        if self.seed < 0:
            raise ValueError("seed must not be negative")
