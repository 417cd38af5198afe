"""--clip: holdout predictions clipped to the data set's rating scale for RMSE/MAE."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.cli import parse_clip
from recommender.data.readers import write_study_csv
from recommender.data.sources import rating_scale
from recommender.data.synthetic import SyntheticSpec, generate
from recommender.params import ALSParams
from tests.engines import run_engine


@pytest.mark.unit
def test_scales_of_the_named_data_sets() -> None:
    assert rating_scale("ml-100k") == rating_scale("ml-100k:u1") == (1.0, 5.0)
    assert rating_scale("ml-20m") == rating_scale("synthetic:ml-20m:7") == (0.5, 5.0)
    assert rating_scale("ratings.csv") is None and rating_scale("fractal:ml-100k:2x2") is None


@pytest.mark.unit
def test_parse_clip() -> None:
    assert parse_clip("1,5") == (1.0, 5.0)
    assert parse_clip("off") is None and parse_clip(None) is None
    with pytest.raises(ValueError, match="expected LOW,HIGH"):
        parse_clip("1-5")


@pytest.mark.torch
def test_clipping_lowers_the_holdout_error(tmp_path: Path) -> None:
    """Ratings lie on the scale, so clipping a prediction to it never moves it away from the truth."""
    data = generate(SyntheticSpec(users=300, items=200, ratings=12_000, rank=4, seed=2))
    path = tmp_path / "ratings.csv"
    write_study_csv(data.frame, path)
    params = ALSParams(rank=8, iterations=8, reg=0.01, holdout=0.3)  # weak regularization: overshoots
    raw = run_engine("torch", path, params=params).metrics
    clipped = run_engine("torch", path, params=params, clip=(1.0, 5.0)).metrics
    assert raw.clip is None and clipped.clip == (1.0, 5.0)
    assert raw.holdout_rmse is not None and clipped.holdout_rmse is not None
    assert clipped.holdout_rmse < raw.holdout_rmse
    assert clipped.train_mse == raw.train_mse  # the training MSE stays the objective's
