"""The report's throughput table on a handmade results frame: bytes per rating from each case's peak RSS."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from experiments import compare, results, tables
from recommender import memory

pytestmark = pytest.mark.unit


def case(impl: str, api: str, ratings: int, peak: float) -> dict[str, object]:
    """A row of `results.load`'s frame with what the throughput table reads."""
    return {"label": "box", "impl": impl, "api": api, "device": "cpu", "data": f"ml-{ratings}", "variant": "",
            "cores": 2, "ratings": ratings, "input_bytes": 20 * ratings, "time_s": 10.0, "fit_s": 4.0,
            "iterations": 10, "peak_rss_bytes": peak}


def test_bytes_per_rating_is_the_peak_rss_over_the_ratings_and_blank_without_one(tmp_path: Path) -> None:
    frame = pd.DataFrame([case("scala", "df", 1_000_000, 864e6), case("torch", "none", 100_000, math.nan)])
    table = tables.throughput(frame)
    per_rating = dict(zip(table.impl, table["bytes/rating"], strict=True))
    assert per_rating["scala"] == pytest.approx(864.0) and math.isnan(per_rating["torch"])
    rows = compare.markdown(table).splitlines()
    torch_row = [cell.strip() for cell in next(r for r in rows if "torch" in r).split("|")]
    assert torch_row[-2] == "–" and "864.00" in next(r for r in rows if "scala" in r)  # the report's blank, not 0
    table.to_csv(tmp_path / "throughput.csv", index=False)
    csv = (tmp_path / "throughput.csv").read_text().splitlines()
    assert csv[0].endswith(",bytes/rating") and next(r for r in csv if ",torch," in r).endswith(",")  # empty


def test_a_cases_peak_is_the_largest_process_peak_its_result_carries() -> None:
    pyspark = {memory.PEAK_RSS: 1.5e8, memory.JVM_PEAK_RSS: 7.2e8, "peak_device_bytes": 9e9}
    assert results.peak_rss({"resources": pyspark}) == 7.2e8
    assert math.isnan(results.peak_rss({"resources": {}})) and math.isnan(results.peak_rss({}))
