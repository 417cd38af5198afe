"""The report's peers table and plot on a handmade results frame: seconds per iteration as the slope of the
fit over iteration counts, each row's ratio to our fastest engine at its data, objective and rank."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from experiments import compare, peers, plots

pytestmark = pytest.mark.unit


def case(impl: str, rank: int, iterations: int, fit_s: float, implicit: bool = True, **more: object) -> dict:
    """A row of `results.load`'s frame with what the peers table reads."""
    return {"label": "box", "data": "positives:4:synthetic:ml-20m", "implicit": implicit, "rank": rank,
            "impl": impl, "api": "df" if impl in ("torch-spark", "python") else "none", "device": "cpu", "cores": 2,
            "solver": "cg", "reg": 1.0, "alpha": 5.0, "holdout": 0.2, "top_k": 10, "iterations": iterations,
            "fit_s": fit_s, "time_s": fit_s + 20, "peak_rss_bytes": 2e9, "ndcg": 0.3, "holdout_rmse": 0.9,
            "exclude_rated": True, "busy": False} | more


def frame() -> pd.DataFrame:
    rows = [case("torch", 64, 2, 7.0), case("torch", 64, 5, 13.0),  # 2 s an iteration, 3 s once
            case("torch-spark", 64, 2, 12.0), case("torch-spark", 64, 5, 19.5),  # 2.5 s
            case("implicit", 64, 2, 9.0, ndcg=0.31), case("implicit", 64, 5, 18.0, ndcg=0.32, busy=True),  # 3 s
            case("implicit", 128, 2, 20.0), case("implicit", 128, 5, 35.0),  # no engine of ours at rank 128
            case("torch", 10, 10, 3.0)]  # one iteration count: no slope, no row
    return pd.DataFrame(rows)


def test_seconds_per_iteration_are_the_fits_slope_and_ratios_are_to_our_fastest() -> None:
    table = peers.table(frame())
    rows = {(r["impl/api"], r["rank"]): r for _, r in table.iterrows()}
    assert set(rows) == {("torch/none", 64), ("torch-spark/df", 64), ("implicit/none", 64), ("implicit/none", 128)}
    assert rows["torch/none", 64]["s/iteration"] == pytest.approx(2.0)
    assert rows["implicit/none", 64]["s/iteration"] == pytest.approx(3.0)
    assert rows["implicit/none", 64]["× our fastest"] == pytest.approx(1.5)
    assert rows["torch-spark/df", 64]["× our fastest"] == pytest.approx(1.25)
    assert math.isnan(rows["implicit/none", 128]["× our fastest"])
    # The run at the larger count gives the rest; any busy round flags the row; no RMSE for implicit.
    implicit = rows["implicit/none", 64]
    assert implicit["NDCG@k"] == 0.32 and implicit["iterations"] == "2/5" and implicit["busy"]
    assert implicit["total (s)"] == 38.0 and implicit["peak RSS (GB)"] == 2.0 and math.isnan(implicit["RMSE"])
    assert list(table.columns) == peers.COLUMNS


def test_explicit_and_implicit_cases_are_compared_apart() -> None:
    explicit = [case("torch", 64, 2, 1.0, implicit=False), case("torch", 64, 5, 2.5, implicit=False),
                case("lenskit", 64, 2, 3.0, implicit=False), case("lenskit", 64, 5, 9.0, implicit=False)]
    table = peers.table(pd.concat([frame(), pd.DataFrame(explicit)], ignore_index=True))
    lenskit = table[table["impl/api"] == "lenskit/none"].iloc[0]
    assert lenskit.objective == "explicit" and lenskit["× our fastest"] == pytest.approx(4.0)
    assert lenskit.RMSE == 0.9


def test_without_cases_at_two_counts_the_table_is_empty() -> None:
    assert peers.table(frame().iloc[-1:]).empty


def test_a_fit_that_did_not_grow_has_no_seconds_per_iteration_and_lists_with_rated_items_no_ndcg() -> None:
    noisy = [case("lenskit", 10, 5, 0.31, exclude_rated=False), case("lenskit", 10, 15, 0.30, exclude_rated=False)]
    (row,) = peers.table(pd.DataFrame(noisy)).to_dict("records")
    assert math.isnan(row["s/iteration"]) and math.isnan(row["NDCG@k"])


def test_the_plot_has_the_reports_size_and_the_report_a_section(tmp_path: Path) -> None:
    png = peers.plot(peers.table(frame()), tmp_path / "peers.png")
    assert Image.open(png).size == plots.SIZE_PX
    text = compare.markdown(peers.table(frame()))
    assert "| implicit/none" in text and "1.50" in text
