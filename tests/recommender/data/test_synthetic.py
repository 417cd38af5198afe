"""The synthetic generator: shape, determinism, skew, value range and its noise floor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.data.synthetic import SyntheticSpec, generate, preset

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def ml100k():
    return generate(preset("ml-100k"))


def test_preset_has_the_movielens_shape(ml100k) -> None:
    frame = ml100k.frame
    assert len(frame) == 100_000
    assert frame["user"].nunique() == 943 and frame["item"].nunique() == 1682
    assert frame["user"].min() == 1 and frame["item"].max() == 1682
    assert not frame.duplicated(["user", "item"]).any()
    assert frame.groupby("user").size().min() >= 20  # MovieLens' own rule


def test_whole_star_scale_for_ml100k_and_half_stars_for_ml20m(ml100k) -> None:
    assert sorted(ml100k.frame["rating"].unique()) == [1, 2, 3, 4, 5]
    spec = preset("ml-20m")
    assert spec.half_stars and spec.users == 138_493 and spec.items == 26_744


def test_skewed_like_movielens(ml100k) -> None:
    """In ml-100k the busiest 10% of items hold about 45% of ratings; uniform data would give 10%."""
    per_item = np.sort(ml100k.frame.groupby("item").size().to_numpy())[::-1]
    top_share = per_item[: len(per_item) // 10].sum() / per_item.sum()
    assert 0.3 < top_share < 0.7
    per_user = ml100k.frame.groupby("user").size()
    assert per_user.max() > 5 * per_user.median()


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    spec = SyntheticSpec(users=200, items=100, ratings=5000, seed=5)
    a, b = generate(spec), generate(spec)
    assert a.frame.equals(b.frame) and a.oracle_mse == b.oracle_mse
    c = generate(SyntheticSpec(users=200, items=100, ratings=5000, seed=6))
    assert not a.frame.equals(c.frame)


@settings(max_examples=20, deadline=None)
@given(
    users=st.integers(5, 60),
    items=st.integers(10, 80),
    density=st.floats(0.05, 0.45),
    half=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_any_valid_spec_gives_exact_counts_and_valid_ratings(users, items, density, half, seed) -> None:
    ratings = max(items, users * 2, int(users * items * density))
    if ratings > users * items // 2:
        return
    spec = SyntheticSpec(users, items, ratings, rank=3, half_stars=half, min_per_user=2, seed=seed)
    frame = generate(spec).frame
    assert len(frame) == ratings
    assert frame["item"].nunique() == items and frame["user"].nunique() == users
    assert not frame.duplicated(["user", "item"]).any()
    low, high, step = spec.scale
    r = frame["rating"].to_numpy()
    assert r.min() >= low and r.max() <= high
    assert np.allclose(r / step, np.round(r / step))


def test_noise_floor_is_the_noise_variance_without_quantization() -> None:
    spec = SyntheticSpec(users=500, items=400, ratings=40_000, noise_std=0.3, quantize=False)
    data = generate(spec)
    assert data.oracle_mse == pytest.approx(0.09, rel=0.03)  # 40k draws: sampling error ~0.7%


def test_impossible_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot give every item one rating"):
        SyntheticSpec(users=10, items=100, ratings=50)
    with pytest.raises(ValueError, match="too dense"):
        SyntheticSpec(users=100, items=10, ratings=2000, min_per_user=1)
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        preset("ml-7m")
