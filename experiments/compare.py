"""`python -m experiments.compare results/*.json [--out report]`: tables and plots from the grid.

Writes report.md (Markdown tables in the study's shape, headline ratios, phase breakdown and the
plots), one CSV per table, and the PNG plots, into the output folder.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from experiments import peers, plots, results, tables
from recommender.launch import registry


def short_command(command: str) -> str:
    """A command with machine-specific paths cut down, for reading (the CSV keeps it whole)."""
    command = re.sub(r"\S*/bin/spark-submit", "spark-submit", command)
    command = re.sub(r"\S*/(recommender/entry\.py|als-recommender\.jar)", r"\1", command)
    return re.sub(r"\S*/((?:prepared|synthetic)/\S+)", r"$CACHE/\1", command)


def _format(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for column in out.columns:
        if column == "command":
            out[column] = [f"`{short_command(c)}`" for c in out[column]]
        elif pd.api.types.is_float_dtype(out[column]):
            precise = "mse" in column.lower() or "@k" in column or column in ("RMSE", "MAE", *results.RANKING)
            style = "{:.4f}" if precise else (
                "{:,.0f}" if column in ("ratings/s", "ratings") else "{:.2f}")
            out[column] = [("–" if pd.isna(v) else style.format(v)) for v in out[column]]
        elif column == "ratings":
            out[column] = [f"{v:,}" for v in out[column]]
    return out


def markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return "_no cases_\n"
    if "variant" in table and not table.variant.fillna("").astype(bool).any():
        table = table.drop(columns="variant")  # no case swept a parameter (the CSV keeps the column)
    return _format(table).to_markdown(index=False, disable_numparse=True) + "\n"


# The study's language comparisons: (implementation, the one it is compared with), from the registry.
COMPARISONS = tuple((impl.name, impl.versus) for impl in registry.IMPLEMENTATIONS if impl.versus)


PAIRS_SHOWN = ["label", "data", "rank", "impl", "api", "device", "cores", "solver", "alpha", "top_k",
               "explicit NDCG@k", "implicit NDCG@k", "implicit/explicit"]


def comparison_title(impl: str, base: str) -> str:
    return f"{impl.capitalize()} over {base.capitalize()}"


def headline(frame: pd.DataFrame) -> list[str]:
    """The study's headline ratios, per label, as geometric means over matching cases."""
    lines = []
    for label, group in frame.groupby("label", sort=False):
        parts = []
        for impl, base in COMPARISONS:
            language = tables.ratio(group, "impl", base, impl)
            if not language.empty:
                parts.append(f"{comparison_title(impl, base)} {tables.geometric_mean(language[f'{base}/{impl}']):.2f}×")
        api = tables.ratio(group, "api", "rdd", "df")
        if not api.empty:
            parts.append(f"DataFrame over RDD {tables.geometric_mean(api['rdd/df']):.2f}×")
        top = int(group.cores.max())
        if top > 1:
            speed = tables.speedups(group, top)
            if not speed.empty:
                parts.append(f"speedup 1→{top} cores {tables.geometric_mean(speed[f'speedup 1→{top}']):.2f}×")
        objectives = tables.implicit_over_explicit(group)
        if not objectives.empty:
            parts.append("implicit over explicit " + ", ".join(
                f"NDCG@{k} {tables.geometric_mean(pairs['implicit/explicit']):.2f}× on {data}"
                for (data, k), pairs in objectives.groupby(["data", "top_k"], sort=False)))
        device = tables.ratio(group, "device", "cpu", "gpu")
        parts.append(f"GPU over CPU {tables.geometric_mean(device['cpu/gpu']):.2f}×"
                     if not device.empty else "no GPU cases")
        busy = int(group.busy.sum())
        if busy:
            parts.append(f"**{busy} of {len(group)} cases ran on a busy machine**: their times and the ratios "
                         "built on them overstate the cost (see 'Cases run on a busy machine')")
        lines.append(f"- **{label}**: " + "; ".join(parts) + ".")
    return lines


def sources_table(sources: list[results.Source]) -> pd.DataFrame:
    rows = []
    for source in sources:
        als = source.machine.get("als") or {}
        rows.append({
            "label": source.label, "file": source.path.name, "date": source.datetime[:19],
            "grid": als.get("grid"), "master": als.get("master"), "CPU": als.get("cpu_model"),
            "cores": als.get("cpu_count"), "memory (GB)": als.get("memory_gb"),
            "GPUs": ", ".join(als.get("gpus") or []) or "none", "Java": als.get("java"),
            "Spark": als.get("spark"), "Scala": als.get("scala"),
        })
    return pd.DataFrame(rows)


def write_report(paths: Sequence[Path], out: Path) -> Path:
    """Read `paths`, write the report, CSVs and plots into `out`; return report.md."""
    frame, sources = results.load(list(paths))
    out.mkdir(parents=True, exist_ok=True)
    top = int(frame.cores.max())
    named = {
        "cases": frame,
        "throughput": tables.throughput(frame),
        **{f"{impl}_over_{base}": tables.ratio(frame, "impl", base, impl) for impl, base in COMPARISONS},
        "df_over_rdd": tables.ratio(frame, "api", "rdd", "df"),
        "gpu_over_cpu": tables.ratio(frame, "device", "cpu", "gpu"),
        "speedup": tables.speedups(frame, top),
        "phases": tables.phases(frame),
        "gpu_operators": tables.gpu_operators(frame),
        "recommend": tables.recommend(frame),
        "ranking": tables.ranking(frame),
        "objectives": tables.objectives(frame),
        "implicit_over_explicit": tables.implicit_over_explicit(frame),
        "peers": peers.table(frame),
        "busy": tables.busy(frame),
    }
    for name, table in named.items():
        table.drop(columns=["gpu_phases"], errors="ignore").to_csv(out / f"{name}.csv", index=False)
    pngs = plots.write_all(frame, out)
    if not named["peers"].empty:
        pngs["peers"] = peers.plot(named["peers"], out / "peers_per_iteration_vs_rank.png")

    text = ["# ALS benchmark report", "",
            f"From {', '.join(p.name for p in paths)}; written "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m experiments.compare`. "
            "Times are the mean wall time of each case's spark-submit process over its rounds; "
            "phases are the recommender's own timings. Runs from different machines keep their "
            "labels and are never averaged together.", "",
            "## Sources", "", markdown(sources_table(sources)),
            "## Headline (geometric means over matching cases)", "", *headline(frame), ""]
    text += ["## MSE, time and speedup against one core", ""]
    for (label, impl, device), table in tables.study_tables(frame).items():
        text += [f"### {impl} · {device} · {label}", "", markdown(table)]
    sections = [
        ("Throughput and the fit's time per iteration by data set size", "throughput"),
        *((comparison_title(impl, base), f"{impl}_over_{base}") for impl, base in COMPARISONS),
        ("DataFrame over RDD", "df_over_rdd"),
        ("GPU over CPU", "gpu_over_cpu"),
        (f"Speedup from 1 to {top} cores", "speedup"),
        ("Where the time goes (phases)", "phases"),
        ("What ran on the GPU (spark-rapids explain, per phase)", "gpu_operators"),
        ("Recommend phase: top-k for every user", "recommend"),
        ("Ranking on the holdout, against the most-popular baseline", "ranking"),
        ("Explicit against implicit ALS and most popular (holdout, rated items left out)", "objectives"),
        ("The peers: implicit, LensKit and MLlib beside our engines (seconds per iteration by rank)", "peers"),
        ("Cases run on a busy machine (other load beyond the cores the case left free)", "busy"),
    ]
    for title, name in sections:
        text += [f"## {title}", "", markdown(named[name])]
        if name == "objectives" and not named["implicit_over_explicit"].empty:
            text += ["Implicit over explicit NDCG@k, case by case (every other parameter the same):", "",
                     markdown(named["implicit_over_explicit"][PAIRS_SHOWN])]
        if name == "peers" and not named["peers"].empty:
            text += [peers.NOTE, ""]
    text += ["## Plots", ""] + [f"![{name}]({png.name})" for name, png in pngs.items()] + [""]
    report = out / "report.md"
    report.write_text("\n".join(text))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.compare", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="pytest-benchmark JSON files")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output folder (default report/)")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.files, args.out)
    except (results.ResultsFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {report}")
    print(f"tables (CSV) and plots (PNG): {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
