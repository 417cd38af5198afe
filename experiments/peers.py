"""The peers table and plot: each library's seconds per iteration at every rank, its whole run, peak memory
and holdout metrics, and its ratio to our fastest engine at the same data, objective and rank. NDCG is shown
only for lists that left rated items out (as in the objectives table).

Seconds per iteration are measured the same way for every library: the slope of the fit phase's time
against the iteration count, over a case's runs at two or more counts (the `peers` grid sweeps two). What a
fit does once (building its matrices, a JIT, a thread pool) falls out of the slope, so a warm iteration is
what is compared. The libraries' objectives differ (recommender/peers): the table's `objective` and the
report's note say how.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments import plots
from recommender.launch import registry

OURS = tuple(impl.name for impl in registry.IMPLEMENTATIONS if impl.ours)
# One library's runs of one setting at several iteration counts.
SETTING = ["label", "data", "implicit", "rank", "impl", "api", "device", "cores", "solver", "reg", "alpha",
           "holdout", "top_k"]
COMPARED = ["label", "data", "implicit", "rank"]  # the rows a ratio to our fastest engine is taken within
COLUMNS = ["label", "data", "objective", "rank", "impl/api", "solver", "cores", "iterations", "s/iteration",
           "× our fastest", "total (s)", "peak RSS (GB)", "NDCG@k", "RMSE", "busy"]
NOTE = ("Objectives: MLlib, torch and torch-spark minimise MLlib's (confidence 1 + α|r|, λ scaled by each row's "
        "count); `implicit` is fed the same confidences but its λ is unscaled (it gets the λ with MLlib's total "
        "penalty on rows of equal norm, recommender/peers/fair.py); LensKit's BiasedMF fits a mean and damped "
        "biases first (damping 5) and its ImplicitMF has an unscaled λ too. Seconds per iteration are the slope "
        "of the fit's time over two iteration counts; the other columns are the run at the larger count.")


def _slope(iterations: pd.Series, seconds: pd.Series) -> float:
    """Least-squares seconds per iteration; NaN where the fit's time did not grow with the iterations
    (a fit too short for its noise)."""
    slope = float(np.polyfit(iterations.astype(float), seconds.astype(float), 1)[0])
    return slope if slope > 0 else math.nan


def _left_out(exclude_rated: object) -> bool:
    """Whether a case's lists left rated items out (None: it had no recommend phase)."""
    return isinstance(exclude_rated, bool | np.bool_) and bool(exclude_rated)


def table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per library setting run at two or more iteration counts (module docstring)."""
    rows = []
    for _, runs in frame.groupby(SETTING, sort=False, dropna=False):
        if runs.iterations.nunique() < 2:
            continue
        last = runs.loc[runs.iterations.idxmax()]
        rows.append({
            "label": last.label, "data": last.data, "implicit": bool(last.implicit), "rank": int(last["rank"]),
            "impl": last.impl, "objective": f"implicit (α {last.alpha:g})" if last.implicit else "explicit",
            "impl/api": f"{last.impl}/{last.api}" + ("" if last.device == "cpu" else f"/{last.device}"),
            "solver": last.solver, "cores": last.cores,
            "iterations": "/".join(str(n) for n in sorted(runs.iterations.unique())),
            "s/iteration": _slope(runs.iterations, runs.fit_s), "total (s)": last.time_s,
            "peak RSS (GB)": last.peak_rss_bytes / 1e9 if last.peak_rss_bytes else math.nan,
            "NDCG@k": last.get("ndcg", math.nan) if _left_out(last.get("exclude_rated")) else math.nan,
            "RMSE": math.nan if last.implicit else last.holdout_rmse,
            "busy": bool(runs.busy.any()),
        })
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    peers = pd.DataFrame(rows)
    ours = peers[peers.impl.isin(OURS)].groupby(COMPARED)["s/iteration"].min().rename("ours")
    peers = peers.join(ours, on=COMPARED)
    peers["× our fastest"] = peers["s/iteration"] / peers.ours
    order = {name: n for n, name in enumerate(registry.NAMES)}
    peers = peers.assign(order=peers.impl.map(order)).sort_values(["label", "implicit", "data", "rank", "order"],
                                                                  kind="stable")
    return peers[COLUMNS].reset_index(drop=True)


def plot(peers: pd.DataFrame, path: Path) -> Path:
    """Seconds per iteration against rank, one line per library (and solver), one panel per data set and
    objective (and label)."""
    panels = list(dict.fromkeys(zip(peers.label, peers.data, peers.objective, strict=True)))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=plots.FIGSIZE, squeeze=False)
    for ax, (label, data, objective) in zip(axes[0], panels, strict=False):
        mine = peers[(peers.label == label) & (peers.data == data) & (peers.objective == objective)]
        for (engine, solver), line in mine.groupby(["impl/api", "solver"], sort=False):
            line = line.sort_values("rank")
            ax.plot(line["rank"], line["s/iteration"], marker="o", label=f"{engine} ({solver})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sorted(mine["rank"].unique()), [str(r) for r in sorted(mine["rank"].unique())])
        ax.set_xlabel("rank")
        ax.set_ylabel("seconds per iteration")
        ax.set_title(f"{data} · {objective}" + (f" · {label}" if peers.label.nunique() > 1 else ""), fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("ALS libraries: seconds per iteration against rank")
    return plots.save(fig, path)
