"""Rating scales: MovieLens' published ones enforced with the line, a user's file warned about, never cut."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.data.formats import BadInputError
from recommender.data.movielens import SETS
from recommender.data.scale import Scale, check_published, observed, outside_warning

pytestmark = pytest.mark.unit


def test_every_movielens_set_knows_its_scale() -> None:
    assert SETS["ml-100k"].scale == SETS["ml-1m"].scale == Scale(1.0, 5.0, 1.0)
    for name in ("ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small"):
        assert SETS[name].scale == Scale(0.5, 5.0, 0.5)


@pytest.mark.parametrize("bad", [0.5, 6.0, 3.5, -1.0])
def test_a_rating_off_a_whole_star_scale_names_its_line(bad: float) -> None:
    ratings = np.array([1, 5, 3, bad, 4, bad], dtype=np.float32)
    with pytest.raises(BadInputError) as info:
        check_published(SETS["ml-1m"].scale, ratings, "ratings.dat", 1, "ml-1m")
    assert str(info.value) == f"ratings.dat, line 4: rating {bad:g} is off ml-1m's scale (1 to 5 in steps of 1) " \
                              "(2 bad lines in all)"


def test_half_stars_pass_a_half_star_scale_and_a_header_shifts_the_line() -> None:
    check_published(SETS["ml-20m"].scale, np.array([0.5, 5.0, 3.5], dtype=np.float32), "r.csv", 2, "ml-20m")
    with pytest.raises(BadInputError, match=r"r\.csv, line 3: rating 0\.25 is off ml-20m's scale"):
        check_published(SETS["ml-20m"].scale, np.array([0.5, 0.25], dtype=np.float32), "r.csv", 2, "ml-20m")


def test_a_user_file_warns_with_counts_about_ratings_off_its_bulk_scale() -> None:
    ratings = np.concatenate([np.tile([1.0, 2.0, 3.0, 4.0, 5.0], 2000), [50.0, 0.0, 2.5]])
    assert observed(ratings) == Scale(1.0, 5.0, 1.0)
    assert outside_warning(ratings) == (
        "3 of 10,003 ratings lie off the scale the bulk of the file shows (1 to 5 in steps of 1), "
        "from 0 to 50; they are kept"
    )


def test_a_clean_or_continuous_file_warns_about_nothing() -> None:
    assert outside_warning(np.tile([0.5, 1.0, 4.5, 5.0], 1000)) is None
    continuous = np.random.default_rng(0).normal(3.0, 1.0, 10_000)
    assert observed(continuous) is None and outside_warning(continuous) is None
