"""A deterministic synthetic ratings generator with MovieLens' shape and a known noise floor.

rating = clip(round(mu + b_user + b_item + <U_user, V_item> + noise)), with Gaussian noise of
known standard deviation. User activity and item popularity are log-normal, as skewed as
MovieLens'; every user has at least `min_per_user` ratings and every item at least one, and no
(user, item) pair repeats. The oracle MSE (observed against true ratings) is the floor that no
model can beat on average, which is what the correctness tests measure against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.movielens import SETS

CHUNK = 1 << 21


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines a synthetic data set; the same spec always gives the same data."""

    users: int
    items: int
    ratings: int
    rank: int = 10
    noise_std: float = 0.5
    half_stars: bool = True
    quantize: bool = True  # round to the star step and clip to the scale, as MovieLens ratings are
    user_skew: float = 1.2  # sigma of the log-normal user activity
    item_skew: float = 2.2  # sigma of the log-normal item popularity
    min_per_user: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.users, self.items, self.ratings, self.rank) < 1:
            raise ValueError("users, items, ratings and rank must be positive")
        if self.ratings < max(self.items, self.users * self.min_per_user):
            raise ValueError(
                f"{self.ratings} ratings cannot give every item one rating and every user "
                f"{self.min_per_user}"
            )
        if self.ratings > self.users * self.items // 2:
            raise ValueError("more ratings than half of all (user, item) pairs: too dense to sample")

    @property
    def scale(self) -> tuple[float, float, float]:
        """(lowest, highest, step) of the rating scale."""
        return (0.5, 5.0, 0.5) if self.half_stars else (1.0, 5.0, 1.0)


@dataclass
class SyntheticData:
    """Generated ratings and the facts about them that the tests rely on."""

    spec: SyntheticSpec
    frame: pd.DataFrame
    oracle_mse: float  # mean squared distance of observed ratings from the true ones


def preset(name: str, seed: int = 0) -> SyntheticSpec:
    """A spec with the users, rated movies, ratings count and scale of a MovieLens set."""
    if name not in SETS:
        raise ValueError(f"unknown synthetic preset {name!r}; known: {', '.join(SETS)}")
    s = SETS[name]
    return SyntheticSpec(s.users, s.movies, s.ratings, half_stars=s.half_stars, seed=seed)


def generate(spec: SyntheticSpec) -> SyntheticData:
    """Draw the data set that `spec` describes."""
    rng = np.random.default_rng(spec.seed)
    per_user = _ratings_per_user(spec, rng)
    users = np.repeat(np.arange(spec.users, dtype=np.int64), per_user)
    items = _draw_items(spec, users, rng)

    low, high, step = spec.scale
    factor_scale = (0.8**2 / spec.rank) ** 0.25  # makes <U, V> have a standard deviation of 0.8
    user_f = rng.normal(0.0, factor_scale, (spec.users, spec.rank))
    item_f = rng.normal(0.0, factor_scale, (spec.items, spec.rank))
    user_b = rng.normal(0.0, 0.4, spec.users)
    item_b = rng.normal(0.0, 0.5, spec.items)
    mu = 3.5

    observed = np.empty(spec.ratings, dtype=np.float32)
    squared_error = 0.0
    for start in range(0, spec.ratings, CHUNK):
        u, i = users[start : start + CHUNK], items[start : start + CHUNK]
        true = mu + user_b[u] + item_b[i] + np.einsum("ij,ij->i", user_f[u], item_f[i])
        noisy = true + rng.normal(0.0, spec.noise_std, len(u))
        if spec.quantize:
            noisy = np.clip(np.round(noisy / step) * step, low, high)
        observed[start : start + CHUNK] = noisy
        squared_error += float(np.sum((noisy - true) ** 2))

    frame = pd.DataFrame(
        {
            USER: (users + 1).astype(np.int32),
            ITEM: (items + 1).astype(np.int32),
            RATING: observed,
        }
    )
    return SyntheticData(spec, frame, squared_error / spec.ratings)


def _ratings_per_user(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """At least `min_per_user` each, the rest log-normal, nobody above half of all items."""
    cap = max(spec.min_per_user, spec.items // 2)
    weights = rng.lognormal(0.0, spec.user_skew, spec.users)
    counts = np.full(spec.users, spec.min_per_user, dtype=np.int64)
    remaining = spec.ratings - counts.sum()
    while remaining > 0:
        open_users = counts < cap
        share = np.where(open_users, weights, 0.0)
        counts += np.minimum(rng.multinomial(remaining, share / share.sum()), cap - counts)
        remaining = spec.ratings - counts.sum()
    return counts


def _draw_items(spec: SyntheticSpec, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Items by log-normal popularity; each item once for coverage; no repeated (user, item)."""
    popularity = rng.lognormal(0.0, spec.item_skew, spec.items)
    cdf = np.cumsum(popularity / popularity.sum())
    n = len(users)

    def draw(count: int, by_popularity: bool) -> np.ndarray:
        if not by_popularity:
            return rng.integers(0, spec.items, count)
        return np.minimum(np.searchsorted(cdf, rng.random(count)), spec.items - 1)

    items = draw(n, True)
    coverage = np.zeros(n, dtype=bool)
    slots = rng.choice(n, spec.items, replace=False)
    items[slots] = rng.permutation(spec.items)
    coverage[slots] = True

    rows = np.arange(n)  # rows still to check: after the first round, only users with a repeat
    for round_ in range(100):
        keys = users[rows] * spec.items + items[rows]
        order = np.lexsort((~coverage[rows], keys))  # within a repeated pair, a coverage slot stays
        sorted_keys = keys[order]
        repeated = rows[order[1:][sorted_keys[1:] == sorted_keys[:-1]]]
        if len(repeated) == 0:
            return items
        items[repeated] = draw(len(repeated), by_popularity=round_ < 3)
        affected = np.zeros(spec.users, dtype=bool)
        affected[users[repeated]] = True
        rows = rows[affected[users[rows]]]
    raise RuntimeError("could not draw distinct (user, item) pairs; the spec is too dense")

