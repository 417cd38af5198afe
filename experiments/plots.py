"""The report's PNG plots: runtime and speedup against cores, throughput against size, phases, and
NDCG of explicit against implicit ALS."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from experiments import tables
from experiments.results import PHASES

FIGSIZE = (10.0, 6.0)
DPI = 100
SIZE_PX = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))  # every plot has exactly this size


def _series_name(row: pd.Series, labels: int) -> str:
    name = f"{row.impl} {row.api}" + (f" {row.device}" if row.device != "cpu" else "")
    name += f" {row.variant}" if row.get("variant") else ""
    return f"{name} · {row.label}" if labels > 1 else name


def save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)  # no tight bbox: the size stays SIZE_PX
    plt.close(fig)
    return path


def _swept(frame: pd.DataFrame) -> pd.DataFrame:
    """Cases whose data set ran on more than one core count."""
    counts = frame.groupby(["label", "impl", "api", "device", "variant", "data"]).cores.transform("nunique")
    return frame[counts > 1]


def against_cores(frame: pd.DataFrame, path: Path, speedup: bool) -> Path:
    """Runtime (or speedup over one core) against cores, one panel per data set."""
    swept = _swept(frame)
    datasets = list(dict.fromkeys(swept.sort_values("ratings").data)) or ["(no cores sweep)"]
    fig, axes = plt.subplots(1, len(datasets), figsize=FIGSIZE, squeeze=False)
    labels = frame.label.nunique()
    for ax, data in zip(axes[0], datasets, strict=False):
        for _, group in swept[swept.data == data].groupby(["label", "impl", "api", "device", "variant"]):
            group = group.sort_values("cores")
            y = group.time_s
            if speedup:
                one = group[group.cores == 1].time_s
                if one.empty:
                    continue
                y = one.iloc[0] / group.time_s
            ax.plot(group.cores, y, marker="o", label=_series_name(group.iloc[0], labels))
        if speedup and not swept.empty:
            top = swept[swept.data == data].cores.max()
            ax.plot([1, top], [1, top], "k:", label="ideal")
        ax.set_title(data)
        ax.set_xlabel("cores")
        ax.set_ylabel("speedup over 1 core" if speedup else "wall time (s)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("Speedup against cores" if speedup else "Runtime against cores")
    fig.subplots_adjust(wspace=0.3)
    return save(fig, path)


def _against_size(frame: pd.DataFrame, column: str, ylabel: str, title: str, path: Path,
                  linear_reference: bool = False) -> Path:
    """A column of the throughput table against data set size (log-log), one line per engine,
    optionally with a line through the smallest case growing linearly in the ratings."""
    table = tables.throughput(frame)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    labels = frame.label.nunique()
    for _, group in table.groupby(["label", "impl", "api", "device", "variant"]):
        group = group.sort_values("ratings")
        ax.plot(group.ratings, group[column], marker="o", label=_series_name(group.iloc[0], labels))
    if linear_reference and len(table):
        first = table.sort_values("ratings").iloc[0]
        span = pd.Series([table.ratings.min(), table.ratings.max()])
        ax.plot(span, first[column] * span / first.ratings, "k:", label="linear in the ratings")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("ratings in the data set")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save(fig, path)


def throughput(frame: pd.DataFrame, path: Path) -> Path:
    """Ratings per second against data set size (log-log), at each case's most cores."""
    return _against_size(frame, "ratings/s", "ratings per second (whole run)", "Throughput against data set size",
                         path)


def per_iteration(frame: pd.DataFrame, path: Path) -> Path:
    """The fit's seconds per iteration against data set size, with a linear reference: a curve
    steeper than the line is time per iteration growing faster than the ratings."""
    return _against_size(frame, "fit s/iteration", "fit seconds per iteration",
                         "Weak scaling: the fit's time per iteration", path, linear_reference=True)


def phase_bars(frame: pd.DataFrame, path: Path) -> Path:
    """Stacked bars of each phase, per case, at each case's most cores."""
    table = tables.phases(frame)
    most = table.groupby(["label", "impl", "api", "device", "variant", "data"]).cores.transform("max")
    table = table[table.cores == most]
    labels = frame.label.nunique()
    names = [f"{_series_name(r, labels)} · {r.data}" for _, r in table.iterrows()]
    parts = [f"{p} (s)" for p in PHASES] + [c for c in ["recommend (s)"] if c in table] + ["startup+other (s)"]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    left = pd.Series(0.0, index=table.index)
    for part in parts:
        values = table[part].fillna(0.0)  # a case without the recommend phase
        ax.barh(names, values, left=left, label=part.replace(" (s)", ""))
        left = left + values
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("Where the time goes")
    ax.legend(fontsize=8, loc="lower right")
    ax.tick_params(axis="y", labelsize=7)
    fig.subplots_adjust(left=0.33)
    return save(fig, path)


def objective_bars(table: pd.DataFrame, path: Path) -> Path:
    """NDCG@k of explicit and implicit ALS, one bar each per engine and rank, with the most-popular
    baseline's as a black tick over each pair; one panel per data set (and label)."""
    panels = list(dict.fromkeys(zip(table.label, table.data, strict=True)))
    fig, axes = plt.subplots(1, len(panels), figsize=FIGSIZE, squeeze=False)
    labels = table.label.nunique()
    for ax, (label, data) in zip(axes[0], panels, strict=False):
        mine = table[(table.label == label) & (table.data == data)]
        groups = list(dict.fromkeys(zip(mine["rank"], mine["impl/api"], mine.cores, mine.solver, strict=True)))
        for x, (rank, engine, cores, solver) in enumerate(groups):
            rows = mine[(mine["rank"] == rank) & (mine["impl/api"] == engine) & (mine.cores == cores)
                        & (mine.solver == solver)]
            width = 0.8 / len(rows)
            for n, (_, row) in enumerate(rows.iterrows()):
                color = "tab:blue" if row.objective == "explicit" else "tab:orange"
                ax.bar(x - 0.4 + width * (n + 0.5), row["NDCG@k"], width, color=color)
            ax.plot([x - 0.4, x + 0.4], [rows["most popular NDCG@k"].iloc[0]] * 2, "k-", linewidth=2)
        ax.set_xticks(range(len(groups)), [f"{engine} r{rank}" for rank, engine, _, _ in groups],
                      rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{data} · {label}" if labels > 1 else data)
        ax.set_ylabel(f"NDCG@{int(mine.k.iloc[0])} on the holdout")
        ax.grid(alpha=0.3, axis="y")
    handles = [plt.Rectangle((0, 0), 1, 1, color="tab:blue"), plt.Rectangle((0, 0), 1, 1, color="tab:orange"),
               plt.Line2D([0], [0], color="k", linewidth=2)]
    fig.legend(handles, ["explicit ALS", "implicit ALS", "most popular"], loc="upper right", fontsize=8)
    fig.suptitle("Explicit against implicit ALS and most popular")
    fig.subplots_adjust(bottom=0.3, wspace=0.3)
    return save(fig, path)


def write_all(frame: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Every plot; the ranking one only where cases have honest ranking metrics (`tables.objectives`)."""
    pngs = {
        "runtime": against_cores(frame, folder / "runtime_vs_cores.png", speedup=False),
        "speedup": against_cores(frame, folder / "speedup_vs_cores.png", speedup=True),
        "throughput": throughput(frame, folder / "throughput_vs_size.png"),
        "per_iteration": per_iteration(frame, folder / "fit_per_iteration_vs_size.png"),
        "phases": phase_bars(frame, folder / "phases.png"),
    }
    ranked = tables.objectives(frame)
    if not ranked.empty:
        pngs["objectives"] = objective_bars(ranked, folder / "ndcg_by_objective.png")
    return pngs
