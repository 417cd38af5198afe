"""The grid's substitution of a synthetic shape for a MovieLens set not stored locally, under views."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import grid
from recommender.data.sources import CACHE_DIR_ENV, DATA_DIR_ENV

pytestmark = pytest.mark.unit


def test_a_view_of_a_missing_set_runs_on_its_synthetic_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))  # an empty cache and no mirror: nothing stored
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert grid.resolve_data("positives:4:ml-20m") == "positives:4:synthetic:ml-20m"
    assert grid.resolve_data("positives:4:fractal:ml-20m:2x2") == "positives:4:fractal:synthetic:ml-20m:2x2:0"
    assert grid.resolve_data("fractal:positives:4:ml-20m:2x2") == "fractal:positives:4:synthetic:ml-20m:2x2:0"
    for kept in ("positives:4:synthetic:ml-20m", "positives:4:ml-100k:u1", "positives:4:ratings.csv"):
        assert grid.resolve_data(kept) == kept
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "ml-20m.zip").write_bytes(b"")  # now cached
    assert grid.resolve_data("positives:4:ml-20m") == "positives:4:ml-20m"
