"""How an expansion compares with its base: degree tails and top singular values, as a table and two plots.

Degrees are counted by streaming the Parquet parts one row group at a time, so memory grows with
the number of users and items, not ratings. The expansion's expected matrix is P (x) B with rows
and columns permuted, so its top singular values should be the largest products of P's and B's;
the report puts the measured ones next to those products (measured only up to SVD_LIMIT ratings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp

from recommender.data.fractal import Base, interactions, parse_fractal, top_svd
from recommender.data.fractal_output import read_manifest
from recommender.data.readers import ITEM, USER
from recommender.data.sources import fractal_base, prepare

TOP = 10  # singular values compared
SVD_LIMIT = 30_000_000  # above this many ratings the expansion's SVD is not measured


@dataclass(frozen=True)
class Degrees:
    """Ratings per user and per item (zeros dropped), and the top singular values, of one matrix."""

    users: np.ndarray
    items: np.ndarray
    singular: np.ndarray | None

    def row(self, name: str) -> dict[str, object]:
        ratings = int(self.users.sum())
        row: dict[str, object] = {
            "set": name, "ratings": ratings, "users": len(self.users), "items": len(self.items),
            "density": ratings / (len(self.users) * len(self.items)),
        }
        for label, degrees in (("user", self.users), ("item", self.items)):
            ordered = np.sort(degrees)[::-1]
            row[f"{label} median"] = float(np.median(degrees))
            row[f"{label} p99"] = float(np.percentile(degrees, 99))
            row[f"{label} max"] = int(ordered[0])
            row[f"top 1% {label}s' share"] = float(ordered[: max(1, len(ordered) // 100)].sum() / ratings)
        if self.singular is not None:
            for i, value in enumerate(self.singular[:3], start=1):
                row[f"s{i}/s1" if i > 1 else "s1"] = float(value if i == 1 else value / self.singular[0])
        return row


def base_degrees(base: Base) -> Degrees:
    users = np.bincount(base.users, minlength=base.n_users)
    items = np.bincount(base.items, minlength=base.n_items)
    _, s, _ = top_svd(interactions(base), min(TOP, min(base.n_users, base.n_items) - 1))
    return Degrees(users[users > 0], items[items > 0], s)


def expanded_degrees(parquet: str, n_users: int, n_items: int) -> Degrees:
    """Degrees of the expansion in `parquet` (ids below n_users and n_items), streamed by row group."""
    users = np.zeros(n_users, dtype=np.int64)
    items = np.zeros(n_items, dtype=np.int64)
    files = sorted(Path(parquet).glob("*.parquet"))
    for path in files:
        reader = pq.ParquetFile(path)
        for group in range(reader.num_row_groups):
            table = reader.read_row_group(group, columns=[USER, ITEM])
            users += np.bincount(table.column(USER).to_numpy(), minlength=n_users)
            items += np.bincount(table.column(ITEM).to_numpy(), minlength=n_items)
    singular = None
    if users.sum() <= SVD_LIMIT:
        frame = pd.concat(pq.read_table(path, columns=[USER, ITEM]).to_pandas() for path in files)
        ones = np.ones(len(frame))
        matrix = sp.csr_matrix((ones, (frame[USER], frame[ITEM])), shape=(n_users, n_items))
        singular = top_svd(matrix, TOP)[1]
    return Degrees(users[users > 0], items[items > 0], singular)


def predicted_singular(base: Degrees, keep: np.ndarray) -> np.ndarray:
    """The largest products of the keep matrix's and the base's singular values."""
    assert base.singular is not None
    products = np.outer(np.linalg.svd(keep, compute_uv=False), base.singular).ravel()
    return np.sort(products)[::-1][:TOP]


def write_report(name: str, base: Base, parquet: str, keep: np.ndarray, out_dir: Path) -> Path:
    """stats.md (tables), stats.csv, spectrum.csv, degrees.png and scree.png: the expansion against its base."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, cols = keep.shape
    before = base_degrees(base)
    after = expanded_degrees(parquet, rows * base.n_users, cols * base.n_items)
    predicted = predicted_singular(before, keep)
    table = pd.DataFrame([before.row("base"), after.row(f"expanded {rows}x{cols}")])
    table.to_csv(out_dir / "stats.csv", index=False)
    spectrum = pd.DataFrame({"rank": np.arange(1, TOP + 1), "predicted (products)": predicted})
    if after.singular is not None:
        spectrum["expanded"] = after.singular[:TOP]
    spectrum.to_csv(out_dir / "spectrum.csv", index=False)
    _plot_degrees(before, after, out_dir / "degrees.png")
    _plot_scree(before, after, predicted, out_dir / "scree.png")
    text = (
        f"# {name}: statistics against the base\n\n"
        + table.to_markdown(index=False, floatfmt=".4g")
        + "\n\nTop singular values of the expansion's 0/1 matrix against the largest products of the "
        "keep-probabilities' and the base's:\n\n"
        + spectrum.to_markdown(index=False, floatfmt=".5g")
        + "\n\n![degrees](degrees.png)\n![scree](scree.png)\n"
    )
    report = out_dir / "stats.md"
    report.write_text(text)
    return report


def _ccdf(degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, share of rows with degree >= d) for each distinct degree d."""
    values, counts = np.unique(degrees, return_counts=True)
    at_least = np.cumsum(counts[::-1])[::-1] / len(degrees)
    return values, at_least


def _plot_degrees(before: Degrees, after: Degrees, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, label, pair in zip(axes, ("user activity", "item popularity"),
                               ((before.users, after.users), (before.items, after.items)), strict=True):
        for degrees, name in zip(pair, ("base", "expanded"), strict=True):
            ax.loglog(*_ccdf(degrees), label=name)
        ax.set(title=label, xlabel="ratings d", ylabel="share with at least d")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_scree(before: Degrees, after: Degrees, predicted: np.ndarray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 4))
    assert before.singular is not None
    series = [(before.singular, "base"), (predicted, "predicted (products)")]
    if after.singular is not None:
        series.append((after.singular, "expanded"))
    for values, name in series:
        ax.loglog(np.arange(1, len(values) + 1), values / values[0], marker="o", label=name)
    ax.set(title="scree (normalised by the largest)", xlabel="rank", ylabel="singular value / first")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report_for(name: str, out_dir: Path, data_dir: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Prepare expansion `name` (cached) and write its statistics report into `out_dir`."""
    prepared = prepare(name, data_dir, cache_dir)
    assert prepared.parquet is not None
    manifest = read_manifest(str(Path(prepared.parquet).parent))
    if manifest is None:
        raise FileNotFoundError(f"{name}: no manifest beside {prepared.parquet}")
    base, _ = fractal_base(parse_fractal(name).base, data_dir, cache_dir)
    return write_report(name, base, manifest.parquet, np.asarray(manifest.keep), out_dir)
