"""Reading pytest-benchmark JSON files written by the grid into one table, one row per case."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.grid import variant
from recommender import memory
from recommender.params import ALSParams, param_fields

PHASES = ("load", "fit", "predict", "evaluate")
CASE_KEYS = ("impl", "api", "device", "cores", "data")
# The ALS parameters each row carries (`iterations` has its own column), from the result line's
# `params`; a key a line lacks (one written before it existed: implicit, solver) reads as its default.
PARAMS = tuple(f.name for f in param_fields() if f.name != "iterations")


class ResultsFileError(ValueError):
    """A file that is not a usable pytest-benchmark JSON of this suite's grid."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


@dataclass(frozen=True)
class Source:
    """One results file and the machine or cluster it came from."""

    path: Path
    label: str
    machine: dict[str, Any]
    datetime: str


def read_file(path: Path) -> dict[str, Any]:
    """The parsed JSON of one pytest-benchmark file, checked for the shape we need."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ResultsFileError(path, f"cannot be read: {error.strerror or error}") from None
    if not text.strip():
        raise ResultsFileError(path, "is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultsFileError(path, f"is not valid JSON (line {error.lineno}, column {error.colno}: "
                                     f"{error.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) \
            or "machine_info" not in data:
        raise ResultsFileError(path, "is not a pytest-benchmark JSON file "
                                     "(expected an object with 'machine_info' and a 'benchmarks' list)")
    if not data["benchmarks"]:
        raise ResultsFileError(path, "has no benchmark cases")
    return data


def _row(path: Path, index: int, bench: dict[str, Any], label: str) -> dict[str, Any]:
    name = bench.get("name", f"#{index}")
    extra = bench.get("extra_info") or {}
    case, result, stats = extra.get("case"), extra.get("result"), bench.get("stats")
    if not isinstance(case, dict) or not isinstance(result, dict) or not isinstance(stats, dict):
        raise ResultsFileError(path, f"case {name} has no ALS result in its extra_info "
                                     "(not written by this suite's benchmark grid)")
    missing = [k for k in CASE_KEYS if k not in case]
    if missing:
        raise ResultsFileError(path, f"case {name}: extra_info.case lacks {missing}")
    rounds = extra.get("rounds") or [{"phases": result["phases"]}]
    try:
        phases = {f"{p}_s": sum(r["phases"][p] for r in rounds) / len(rounds) for p in PHASES}
        row = {
            "label": label,
            "file": path.name,
            **{k: case[k] for k in CASE_KEYS},
            "variant": variant(case.get("swept") or {}),  # the swept parameters, as the case id names them
            **param_columns(result["params"]),
            "ratings": result["counts"]["ratings"],
            "iterations": result["params"]["iterations"],
            "input_bytes": result["input_bytes"],
            "peak_rss_bytes": peak_rss(result),
            "train_mse": result["metrics"]["train_mse"],
            "holdout_rmse": result["metrics"].get("holdout_rmse"),
            "time_s": stats["mean"],
            "time_sd": stats["stddev"] if stats.get("rounds", 1) > 1 else float("nan"),
            "rounds": stats["rounds"],
            **phases,
            "phases_total_s": sum(phases.values()) + _recommend_s(rounds),
            **recommend_columns(result, rounds),
            "command": extra.get("command", ""),
            "spark": _runtime(result)["spark"]["version"] if _runtime(result)["spark"] else None,
            "master": extra.get("master") or _where(_runtime(result)),
            "gpu_phases": (extra.get("gpu_explain") or {}).get("phases") or {},
            **_load_columns(extra.get("machine_load")),
        }
    except (KeyError, TypeError, ZeroDivisionError) as error:
        raise ResultsFileError(path, f"case {name}: malformed result ({error!r} missing or wrong)") from None
    return row


RANKING = ("precision", "recall", "ndcg", "map")
DEFAULTS = ALSParams()


def param_columns(params: dict[str, Any]) -> dict[str, Any]:
    """The run's ALS parameters, with the defaults for those its result line does not name."""
    return {name: params.get(name, getattr(DEFAULTS, name)) for name in PARAMS}


def _recommend_s(rounds: list[dict[str, Any]]) -> float:
    """The recommend phase's mean seconds; 0 for a run without one."""
    return sum(r["phases"].get("recommend", 0.0) for r in rounds) / len(rounds)


def recommend_columns(result: dict[str, Any], rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The recommend phase (NaN without one) and the ranking metrics of the model and the baseline."""
    recommended = result.get("recommended") or {}
    seconds = _recommend_s(rounds) if recommended else float("nan")
    metrics = result["metrics"]
    columns: dict[str, Any] = {
        "recommend_s": seconds, "top_k": recommended.get("k"), "recommended_users": recommended.get("users"),
        "recommend_users_per_s": recommended["users"] / seconds if recommended and seconds > 0 else float("nan"),
        "holdout_mae": metrics.get("holdout_mae"), "ranked_users": (metrics.get("ranking") or {}).get("users"),
        "exclude_rated": recommended.get("exclude_rated") if recommended else None,
    }
    for who, prefix in (("ranking", ""), ("baseline", "baseline_")):
        ranked = metrics.get(who) or {}
        columns |= {f"{prefix}{key}": ranked.get(key, float("nan")) for key in RANKING}
    return columns


def peak_rss(result: dict[str, Any]) -> float:
    """The largest process peak RSS the result line carries (`memory.largest_peak`: the Python
    process's, the driver JVM's or a task worker's), NaN for a line that carries none."""
    peak = memory.largest_peak(result.get("resources") or {})
    return float("nan") if peak is None else peak


def _runtime(result: dict[str, Any]) -> dict[str, Any]:
    """The result line's `runtime` (schema 2); a schema-1 line had a `spark` object instead."""
    runtime: dict[str, Any] = result["runtime"] if "runtime" in result else {"spark": result["spark"], "torch": None}
    return runtime


def _where(runtime: dict[str, Any]) -> str:
    """The Spark master a case ran on, or the device of a Spark-less engine."""
    return runtime["spark"]["master"] if runtime.get("spark") else f"torch:{runtime['torch']['device']}"


def _load_columns(load: Any) -> dict[str, Any]:
    """Whether the case ran on a busy machine (experiments.environment.MachineLoad), where recorded."""
    if not isinstance(load, dict):
        return {"busy": False, "others_load": float("nan")}
    return {"busy": bool(load.get("busy")), "others_load": float(load.get("others", float("nan")))}


def load(paths: list[Path]) -> tuple[pd.DataFrame, list[Source]]:
    """All cases of all files. Files from the same machine label are told apart by file name."""
    if not paths:
        raise ValueError("no results files given")
    raw = [(path, read_file(path)) for path in paths]
    base = [_label(path, data) for path, data in raw]
    repeats = Counter(base)
    sources, rows = [], []
    for (path, data), label in zip(raw, base, strict=False):
        if repeats[label] > 1:
            label = f"{label} [{path.name}]"
        machine = data["machine_info"] if isinstance(data["machine_info"], dict) else {}
        sources.append(Source(path, label, machine, data.get("datetime", "")))
        rows += [_row(path, i, bench, label) for i, bench in enumerate(data["benchmarks"])]
    frame = pd.DataFrame(rows)
    frame["cores"] = frame["cores"].astype(int)
    return frame, sources


def _label(path: Path, data: dict[str, Any]) -> str:
    info = data["machine_info"] if isinstance(data["machine_info"], dict) else {}
    als = info.get("als") or {}
    return als.get("label") or info.get("node") or path.stem
