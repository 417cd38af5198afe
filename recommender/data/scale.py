"""Rating scales: a MovieLens set's published one, enforced when it is prepared, and the one the bulk
of a user's file shows, which only warns.

The rule for a user's file (it declares no scale): when at least 99.9% of its ratings lie on a star
grid (whole numbers, else half numbers), its scale is that grid from the 0.1% to the 99.9% quantile
of those ratings; ratings off that range or grid are counted in a warning and kept, never dropped.
Ratings on no grid (continuous scores) show no scale, and nothing is warned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.data.formats import BadInputError

BULK = 0.999  # the share of ratings that makes a scale
GRIDS = (1.0, 0.5)  # whole stars, then half stars


@dataclass(frozen=True)
class Scale:
    """Ratings from `low` to `high` in steps of `step`."""

    low: float
    high: float
    step: float

    def off(self, ratings: np.ndarray) -> np.ndarray:
        """Which ratings are off the scale: outside its range or between its steps."""
        steps = ratings / self.step
        return (ratings < self.low) | (ratings > self.high) | (np.round(steps) != steps)

    def describe(self) -> str:
        return f"{self.low:g} to {self.high:g} in steps of {self.step:g}"


def check_published(scale: Scale, ratings: np.ndarray, source: str, first_line: int, name: str) -> None:
    """A BadInputError naming the first rating off a data set's published scale; `first_line` is the
    file line of ratings[0] (the files have no blank lines)."""
    off = np.flatnonzero(scale.off(ratings))
    if len(off):
        problem = f"rating {float(ratings[off[0]]):g} is off {name}'s scale ({scale.describe()})"
        raise BadInputError(source, problem, line=first_line + int(off[0]), skipped=len(off))


def observed(ratings: np.ndarray) -> Scale | None:
    """The scale the bulk of a user's ratings shows (the module's rule), or None when they show none."""
    for step in GRIDS:
        steps = ratings / step
        on = ratings[np.round(steps) == steps]
        if len(ratings) and len(on) >= BULK * len(ratings):
            low, high = np.quantile(on, [1 - BULK, BULK], method="inverted_cdf")
            return Scale(float(low), float(high), step)
    return None


def outside_warning(ratings: np.ndarray) -> str | None:
    """A warning with counts when some ratings fall off the scale the bulk shows; None when none do."""
    scale = observed(ratings)
    if scale is None:
        return None
    off = scale.off(ratings)
    if not off.any():
        return None
    low, high = float(ratings[off].min()), float(ratings[off].max())
    return (f"{int(off.sum()):,} of {len(ratings):,} ratings lie off the scale the bulk of the file shows "
            f"({scale.describe()}), from {low:g} to {high:g}; they are kept")
