"""The report's tables, computed from the per-case frame of `results.load`.

Times are the mean wall time of a case's spark-submit process over its rounds (what the study
read off the cluster). Rows from different labels (machines, clusters) are never combined.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments.grid import IMPL_ORDER
from experiments.results import PHASES, RANKING

CASE = ["label", "impl", "api", "device", "data", "cores", "variant"]  # `variant`: the swept ALS parameters


def _by_size(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["label", "ratings", "data", "impl", "api", "device", "cores", "variant"], kind="stable")


def study_tables(frame: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """One table per (label, implementation, device): MSE, time, speedup against one core, command."""
    tables = {}
    for (label, impl, device), group in frame.groupby(["label", "impl", "device"], sort=False):
        rows = []
        for _, case in _by_size(group).iterrows():
            one = group[(group.api == case.api) & (group.data == case.data) & (group.variant == case.variant)
                        & (group.cores == 1)]
            speedup = one.time_s.iloc[0] / case.time_s if len(one) else float("nan")
            rows.append({"data": case.data, "api": case.api, "variant": case.variant, "cores": case.cores,
                         "MSE": case.train_mse, "time (s)": case.time_s, "± sd": case.time_sd,
                         "speedup vs 1 core": speedup, "command": case.command})
        tables[(label, impl, device)] = pd.DataFrame(rows)
    return tables


def throughput(frame: pd.DataFrame) -> pd.DataFrame:
    """MB/s and ratings/s by data set size, at the most cores each case ran on (as in the study), the
    fit's seconds per iteration (the weak-scaling measure, linear in the ratings at best), and bytes
    per rating: the case's peak RSS (the largest process peak its result carries, `results.peak_rss`)
    over its ratings, NaN (a blank cell) where the result carries none."""
    most = frame.groupby(["label", "impl", "api", "device", "data", "variant"]).cores.transform("max")
    top = _by_size(frame[frame.cores == most])
    return pd.DataFrame({
        "label": top.label, "impl": top.impl, "api": top.api, "device": top.device, "variant": top.variant,
        "data": top.data, "cores": top.cores, "ratings": top.ratings,
        "MB": top.input_bytes / 1e6, "time (s)": top.time_s,
        "MB/s": top.input_bytes / 1e6 / top.time_s, "ratings/s": top.ratings / top.time_s,
        "fit s/iteration": top.fit_s / top.iterations,
        "fit ratings/s per iteration": top.ratings * top.iterations / top.fit_s,
        "bytes/rating": top.peak_rss_bytes / top.ratings,
    }).reset_index(drop=True)


def ratio(frame: pd.DataFrame, axis: str, slow: str, fast: str) -> pd.DataFrame:
    """time(slow) / time(fast) for every case that ran both ways along `axis`; > 1: `fast` wins."""
    keys = [k for k in CASE if k != axis]
    wide = frame.pivot_table(index=keys, columns=axis, values="time_s", aggfunc="first")
    if slow not in wide or fast not in wide:
        return pd.DataFrame(columns=[*keys, f"{slow} (s)", f"{fast} (s)", f"{slow}/{fast}"])
    both = wide[[slow, fast]].dropna()
    out = both.rename(columns={slow: f"{slow} (s)", fast: f"{fast} (s)"})
    out[f"{slow}/{fast}"] = both[slow] / both[fast]
    return out.reset_index()


def speedups(frame: pd.DataFrame, cores: int) -> pd.DataFrame:
    """time(1 core) / time(`cores` cores) for every case that ran on both."""
    pair = frame[frame.cores.isin([1, cores])].assign(cores=lambda f: f.cores.map({1: "1", cores: "n"}))
    table = ratio(pair, "cores", "1", "n")
    return table.rename(columns={"1 (s)": "1 core (s)", "n (s)": f"{cores} cores (s)",
                                 "1/n": f"speedup 1→{cores}"})


def phases(frame: pd.DataFrame) -> pd.DataFrame:
    """Where the time goes: each phase's mean seconds, and the rest (JVM and session start, stop)."""
    ordered = _by_size(frame)
    table = ordered[["label", "impl", "api", "device", "variant", "data", "cores"]].copy()
    for phase in PHASES:
        table[f"{phase} (s)"] = ordered[f"{phase}_s"]
    if "recommend_s" in ordered:
        table["recommend (s)"] = ordered.recommend_s
    table["startup+other (s)"] = (ordered.time_s - ordered.phases_total_s).clip(lower=0)
    table["wall (s)"] = ordered.time_s
    table["predict+evaluate share"] = (ordered.predict_s + ordered.evaluate_s) / ordered.time_s
    return table.reset_index(drop=True)


def geometric_mean(values: pd.Series) -> float:
    values = values.dropna()
    return float(np.exp(np.log(values).mean())) if len(values) else math.nan


def gpu_operators(frame: pd.DataFrame) -> pd.DataFrame:
    """Per GPU case and phase, the Spark operators spark-rapids ran on the GPU and those it did not.

    Phases without a line (MLlib's ALS solver, RDD code) never became a SQL plan: they ran on
    the CPU without the plugin seeing them.
    """
    rows = []
    for _, case in _by_size(frame[frame.device == "gpu"]).iterrows():
        for phase, report in case.gpu_phases.items():
            rows.append({
                "label": case.label, "impl": case.impl, "api": case.api, "variant": case.variant, "data": case.data,
                "cores": case.cores, "phase": phase,
                "on GPU": ", ".join(sorted(report.get("on_gpu", {}))),
                "on CPU (why)": "; ".join(f"{op} ({'; '.join(why) or 'no reason given'})"
                                          for op, why in sorted(report.get("on_cpu", {}).items())),
            })
    return pd.DataFrame(rows, columns=["label", "impl", "api", "variant", "data", "cores", "phase", "on GPU",
                                       "on CPU (why)"])


def recommend(frame: pd.DataFrame) -> pd.DataFrame:
    """The recommend phase of every case that ran one: top-k for all users, and users per second."""
    ran = _by_size(frame[frame.recommend_s.notna()]) if "recommend_s" in frame else frame.iloc[:0]
    return pd.DataFrame({
        "label": ran.label, "impl": ran.impl, "api": ran.api, "device": ran.device, "variant": ran.variant,
        "data": ran.data, "cores": ran.cores, "k": ran.get("top_k"), "users": ran.get("recommended_users"),
        "recommend (s)": ran.recommend_s, "users/s": ran.get("recommend_users_per_s"),
    }).reset_index(drop=True)


def ranking(frame: pd.DataFrame) -> pd.DataFrame:
    """Per data set, RMSE, MAE and the ranking metrics of each case's top-k lists on the holdout,
    with the most-popular baseline (the same lists in every case of a data set) as its own row."""
    if "precision" not in frame:
        return pd.DataFrame()
    ranked = _by_size(frame[frame.precision.notna()])
    rows = []
    for (label, data), group in ranked.groupby(["label", "data"], sort=False):
        for _, case in group.iterrows():
            model = f"ALS {case.impl}/{case.api}/{case.device}" + (f" {case.variant}" if case.variant else "")
            rows.append({"label": label, "data": data, "model": model,
                         "k": case.top_k, "users": case.ranked_users, "RMSE": case.holdout_rmse,
                         "MAE": case.holdout_mae, **{m: case[m] for m in RANKING}})
        first = group.iloc[0]
        rows.append({"label": label, "data": data, "model": "most popular (baseline)", "k": first.top_k,
                     "users": first.ranked_users, "RMSE": math.nan, "MAE": math.nan,
                     **{m: first[f"baseline_{m}"] for m in RANKING}})
    return pd.DataFrame(rows)


def _honest(frame: pd.DataFrame) -> pd.DataFrame:
    """Cases with ranking metrics of lists that left each user's training items out."""
    if "ndcg" not in frame:
        return frame.iloc[:0]
    return frame[frame.ndcg.notna() & frame.exclude_rated.map(lambda left_out: left_out is True)]


def objective(case: pd.Series) -> str:
    """explicit, or implicit with its confidence scale."""
    return f"implicit (α {case.alpha:g})" if case.implicit else "explicit"


def objectives(frame: pd.DataFrame) -> pd.DataFrame:
    """Explicit ALS, implicit ALS and the most-popular baseline side by side, per data set and rank: each
    case's precision, NDCG and MAP at k on the holdout, the baseline's NDCG on the same users, and the
    model's NDCG over it (> 1: the model ranks better than popularity). Only cases with ranking metrics
    whose lists left rated items out."""
    ranked = _honest(frame).assign(order=lambda f: f.impl.map(IMPL_ORDER))
    ranked = ranked.sort_values(["label", "ratings", "data", "rank", "order", "api", "device", "cores",
                                 "implicit", "alpha", "solver", "variant"], kind="stable")
    return pd.DataFrame({
        "label": ranked.label, "data": ranked.data, "rank": ranked["rank"],
        "impl/api": ranked.impl + "/" + ranked.api + ranked.device.map(lambda d: "" if d == "cpu" else f"/{d}"),
        "cores": ranked.cores, "objective": [objective(case) for _, case in ranked.iterrows()],
        "solver": ranked.solver, "k": ranked.top_k, "users": ranked.ranked_users,
        "P@k": ranked.precision, "NDCG@k": ranked.ndcg, "MAP@k": ranked["map"],
        "most popular NDCG@k": ranked.baseline_ndcg, "NDCG / most popular": ranked.ndcg / ranked.baseline_ndcg,
    }, columns=OBJECTIVE_COLUMNS).reset_index(drop=True)


OBJECTIVE_COLUMNS = ["label", "data", "rank", "impl/api", "cores", "objective", "solver", "k", "users", "P@k",
                     "NDCG@k", "MAP@k", "most popular NDCG@k", "NDCG / most popular"]
# What an explicit and an implicit case must share to be compared: all but the objective (and alpha,
# which only the implicit objective reads).
PAIRED = ["label", "impl", "api", "device", "data", "cores", "top_k", "rank", "iterations", "reg", "seed",
          "holdout", "solver", "cg_steps"]


def implicit_over_explicit(frame: pd.DataFrame) -> pd.DataFrame:
    """NDCG@k of each implicit case over that of the explicit case run the same way otherwise."""
    ranked = _honest(frame)
    columns = [*PAIRED, "alpha", "explicit NDCG@k", "implicit NDCG@k", "implicit/explicit"]
    if ranked.empty:
        return pd.DataFrame(columns=columns)
    explicit = ranked[~ranked.implicit.astype(bool)][[*PAIRED, "ndcg"]]
    implicit = ranked[ranked.implicit.astype(bool)][[*PAIRED, "alpha", "ndcg"]]
    both = explicit.merge(implicit, on=PAIRED, suffixes=("_explicit", "_implicit"))
    both = both.rename(columns={"ndcg_explicit": "explicit NDCG@k", "ndcg_implicit": "implicit NDCG@k"})
    both["implicit/explicit"] = both["implicit NDCG@k"] / both["explicit NDCG@k"]
    both = both.assign(order=both.impl.map(IMPL_ORDER)).sort_values(["label", "data", "rank", "order", "api"],
                                                                      kind="stable")
    return both[columns].reset_index(drop=True)


def busy(frame: pd.DataFrame) -> pd.DataFrame:
    """The cases whose machine was busy with other work while they ran, and how busy."""
    rows = frame[frame.busy]
    return pd.DataFrame({
        "label": rows.label, "impl": rows.impl, "api": rows.api, "device": rows.device, "variant": rows.variant,
        "data": rows.data, "cores": rows.cores, "time (s)": rows.time_s, "others' load": rows.others_load,
    }).reset_index(drop=True)
