"""The statistics report of an expansion: its counts match the manifest and its spectrum the prediction."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender.data.fractal_output import read_manifest
from recommender.data.fractal_stats import report_for
from recommender.data.sources import prepare

pytestmark = pytest.mark.unit


def test_report_on_an_ml100k_expansion(movielens_dir: Path, tmp_path: Path) -> None:
    name = "fractal:ml-100k:4x4:1"
    report = report_for(name, tmp_path / "stats", movielens_dir, tmp_path / "cache")
    prepared = prepare(name, movielens_dir, tmp_path / "cache")
    manifest = read_manifest(str(Path(str(prepared.parquet)).parent))
    assert manifest is not None
    table = pd.read_csv(tmp_path / "stats" / "stats.csv")
    base, expanded = table.iloc[0], table.iloc[1]
    assert (base["ratings"], base["users"], base["items"]) == (100_000, 943, 1_682)
    assert (expanded["ratings"], expanded["users"], expanded["items"]) == (
        manifest.ratings, manifest.users, manifest.items,
    )
    spectrum = pd.read_csv(tmp_path / "stats" / "spectrum.csv")
    top = spectrum.iloc[0]
    assert abs(top["expanded"] / top["predicted (products)"] - 1) < 0.02  # the top singular value is the product's
    assert "| expanded 4x4 |" in report.read_text()
    for plot in ("degrees.png", "scree.png"):
        assert (tmp_path / "stats" / plot).read_bytes()[:4] == b"\x89PNG"
