"""The sweep that chose the implicit-feedback defaults (`recommender.params.IMPLICIT_DEFAULTS`).

Implicit ALS on ml-100k's hashed 80/20 holdout (never its u1..u5 splits, on which the defaults are
then judged), top-10 with training items left out, with the single-node `torch` engine (the same
objective as MLlib's implicitPrefs, and seconds a case): every rank, alpha and λ of the grid below.
Prints the cases best first by NDCG@10 next to most popular, and writes them as JSON.

`python -m experiments.implicit_sweep [--data NAME] [--out FILE]`
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tabulate import tabulate

from recommender.data.sources import prepare
from recommender.engine import Job, execute
from recommender.launch import registry
from recommender.params import ALSParams
from recommender.result import RunResult
from recommender.timing import PhaseTimer

RANKS = (10, 32, 64)
ALPHAS = (1.0, 5.0, 20.0, 40.0)
REGS = (0.01, 0.1, 1.0, 3.0)
ITERATIONS = 15
HOLDOUT = 0.2
TOP_K = 10


def run_case(path: str, data: str, rank: int, alpha: float, reg: float) -> RunResult:
    """One implicit fit of the sweep on `path`, ranked on its hashed holdout."""
    params = ALSParams(rank=rank, iterations=ITERATIONS, reg=reg, holdout=HOLDOUT, implicit=True, alpha=alpha)
    job = Job(registry.NO_SPARK_API, path, data, params, top_k=TOP_K, unique_pairs=True)
    return execute(registry.get("torch"), job, PhaseTimer())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.implicit_sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="ml-100k", help="data set (default ml-100k)")
    parser.add_argument("--out", type=Path, default=Path("results/implicit-sweep.json"))
    args = parser.parse_args(argv)
    prepared = prepare(args.data)
    rows: list[dict[str, Any]] = []
    for rank, alpha, reg in itertools.product(RANKS, ALPHAS, REGS):
        result = run_case(prepared.input_for(True), prepared.name, rank, alpha, reg)
        model, base = result.metrics.ranking, result.metrics.baseline
        assert model is not None and base is not None, "the holdout gives every case its ranking metrics"
        rows.append({"rank": rank, "alpha": alpha, "reg": reg, "precision": model.precision, "ndcg": model.ndcg,
                     "map": model.map, "popular_ndcg": base.ndcg, "fit_s": result.phases["fit"],
                     "result": asdict(result)})
    rows.sort(key=lambda row: -row["ndcg"])
    columns = ("rank", "alpha", "reg", "precision", "ndcg", "map", "popular_ndcg", "fit_s")
    print(tabulate([[row[c] for c in columns] for row in rows], headers=columns, floatfmt=".4f"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
