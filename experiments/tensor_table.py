"""The PyTorch engine benchmark's figures as one table: fit, seconds per iteration, top-k, peak
device memory, per data set, device and rank, with CUDA's speedup over the CPU beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

from recommender import memory

GIB = 2**30


def rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per benchmark case of a tensor_bench JSON document."""
    out = []
    for bench in document.get("benchmarks", []):
        extra = bench["extra_info"]
        case, result = extra["case"], extra["result"]
        phases = result["phases"]
        peak = result["resources"].get(memory.PEAK_DEVICE)
        out.append({
            "data": case["data"],
            "device": extra["device_name"] if case["device"] == "gpu" else f"cpu ×{case['cores']}",
            "on": case["device"], "rank": case["rank"], "ratings": result["counts"]["ratings"],
            "fit (s)": phases["fit"], "s/iteration": extra["seconds_per_iteration"],
            "top-k (s)": phases.get("recommend"), "peak GiB": peak / GIB if peak else None,
            "train MSE": result["metrics"]["train_mse"], "whole run (s)": bench["stats"]["mean"],
        })
    fits = {(r["data"], r["rank"], r["on"]): r["fit (s)"] for r in out}
    for row in out:
        cpu = fits.get((row["data"], row["rank"], "cpu"))
        row["fit speedup vs CPU"] = cpu / row["fit (s)"] if row["on"] == "gpu" and cpu else None
    return out


def summary(path: Path) -> str:
    table = rows(json.loads(path.read_text()))
    if not table:
        return "no benchmark cases ran"
    for row in table:
        row.pop("on")
    return tabulate(table, headers="keys", floatfmt=".3g", missingval="–")
