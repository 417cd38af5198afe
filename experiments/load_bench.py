"""`python -m experiments.load_bench [--data synthetic:ml-20m]`: the DataFrame load phase side by side
with its floor and the loader on Spark's CSV reader, in one Spark session, on the same file.

Cases (each forced, its cache dropped before the next, in turn for `--rounds` rounds):
- `floor`: Spark's own CSV read with a typed schema, cached and counted; no checks at all;
- `csv_reader`: the fast pass as it was until the loaders read text (commit 6cc33d3): the same checks
  on the fields of Spark's CSV reader, cached and counted, as `load_df` does with `unique_pairs`;
- `load_df`: today's `recommender.spark.loading.load_df` with `unique_pairs` (what the grids run);
- `load_df_pairs`: the same with the repeated-pair count (a user's own file);
- `parquet`: `load_parquet` on the set's Parquet conversion, where it has one (the torch engines' input).
Prints a table and writes pytest-benchmark-like JSON (`--json`), each case with the machine's load
while it ran (experiments.environment: others > 0.5 cores means the figure is not quotable).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from experiments.environment import TreeWatch, machine_load, sample_load, tree_cpu_seconds
from recommender.data.columns import ITEM, RATING, USER
from recommender.spark import loading

CASES = ("floor", "csv_reader", "load_df", "load_df_pairs", "parquet")


CORRUPT = "_corrupt"
# Three text fields and the corrupt-record column, which the CSV reader sets on a line with another count.
CSV_SCHEMA = StructType([StructField(n, StringType()) for n in ("u", "i", "r", CORRUPT)])
# No quoting: "\n" never occurs inside a line, so the reader keeps quote characters as text.
CSV_OPTIONS = {"sep": ",", "quote": "\n", "escape": "\n", "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}


def csv_reader_pass(spark: SparkSession, path: str) -> DataFrame:
    """`loading.fast_pass` as it was on Spark's CSV reader: (ok, user, item, rating) per line."""
    text = spark.read.csv(path, schema=CSV_SCHEMA, **CSV_OPTIONS)
    user, sure_user = loading._sure_id(F.col("u"))
    item, sure_item = loading._sure_id(F.col("i"))
    rating, sure_rating = loading._sure_rating(F.col("r"))
    ok = F.coalesce(F.col(CORRUPT).isNull() & sure_user & sure_item & sure_rating, F.lit(False))
    return text.select(ok.alias("ok"), user.alias(USER), item.alias(ITEM), rating.cast("float").alias(RATING))


def cases(spark: SparkSession, csv: str, parquet: str | None) -> dict[str, Callable[[], int]]:
    """Each case as a call that loads and forces the file and returns the ratings it holds."""

    def floor() -> int:
        return spark.read.csv(csv, schema=f"{USER} int, {ITEM} int, {RATING} float").cache().count()

    def csv_reader() -> int:
        parsed = csv_reader_pass(spark, csv).cache()
        row = parsed.agg(F.count("*").alias("n"), F.count_if("ok").alias("good")).first()
        assert row is not None and row["n"] == row["good"], "the CSV reader's fast pass found bad lines"
        return int(row["good"])

    found: dict[str, Callable[[], int]] = {
        "floor": floor,
        "csv_reader": csv_reader,
        "load_df": lambda: loading.load_df(spark, csv, False, unique_pairs=True)[1].ratings,
        "load_df_pairs": lambda: loading.load_df(spark, csv, False, unique_pairs=False)[1].ratings,
    }
    if parquet is not None:
        found["parquet"] = lambda: loading.load_parquet(spark, parquet)[1].ratings
    return found


def measure(spark: SparkSession, named: dict[str, Callable[[], int]], rounds: int,
            cores: int) -> list[dict[str, Any]]:
    """Every case `rounds` times, in turn; each time with its seconds and the machine's load."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in named}
    for _ in range(rounds):
        for name, run in named.items():
            # The session's JVM and workers outlive the case: its CPU time is what the tree used meanwhile.
            spent = sum(tree_cpu_seconds(os.getpid()).values())
            watch, before = TreeWatch(os.getpid()), sample_load()
            started = time.perf_counter()
            ratings = run()
            seconds = time.perf_counter() - started
            load = machine_load(before, sample_load(), cores, tree_cpu_s=watch.cpu_s() - spent)
            spark.catalog.clearCache()
            runs[name].append({"seconds": round(seconds, 3), "ratings": ratings, "load": load.as_dict()})
            print(f"{name}: {seconds:.1f} s, {ratings:,} ratings, other processes {load.others:.2f} cores", flush=True)
    return [_entry(name, found) for name, found in runs.items()]


def _entry(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    data = [r["seconds"] for r in runs]
    stats = {"min": min(data), "max": max(data), "mean": statistics.fmean(data), "median": statistics.median(data),
             "rounds": len(data), "data": data}
    return {"name": name, "group": "load", "stats": stats, "extra_info": {"runs": runs}}


def table(benchmarks: list[dict[str, Any]]) -> str:
    """One line a case: median and min seconds, its ratio to `floor`, and whether a round ran busy."""
    medians = {b["name"]: b["stats"]["median"] for b in benchmarks}
    floor = medians.get("floor")
    lines = [f"{'case':15} {'median s':>9} {'min s':>7} {'x floor':>8}  busy"]
    for b in benchmarks:
        ratio = f"{medians[b['name']] / floor:.2f}" if floor else "-"
        busy = "BUSY" if any(r["load"]["busy"] for r in b["extra_info"]["runs"]) else "no"
        lines.append(f"{b['name']:15} {b['stats']['median']:9.1f} {b['stats']['min']:7.1f} {ratio:>8}  {busy}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.load_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="synthetic:ml-20m", help="a data set name or a study-format CSV file")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--json", type=Path, default=None, help="write pytest-benchmark-like JSON here")
    args = parser.parse_args(argv)

    from recommender.data.sources import prepare
    from recommender.spark.config import SessionConfig
    from recommender.spark.session import spark_session

    if Path(args.data).is_file():
        csv, parquet = args.data, None
    else:
        prepared = prepare(args.data)
        csv, parquet = prepared.csv, prepared.parquet
    wanted = args.cases.split(",")
    unknown = set(wanted) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    config = SessionConfig(master=args.master, driver_memory=args.driver_memory)
    with spark_session(config) as spark:
        cores = spark.sparkContext.defaultParallelism
        spark.read.text(csv).count()  # the JVM's first read, so that no case pays the warm-up
        named = {name: run for name, run in cases(spark, csv, parquet).items() if name in wanted}
        benchmarks = measure(spark, named, args.rounds, cores)
    print(f"{args.data} ({csv}), {args.master}, {args.rounds} rounds")
    print(table(benchmarks))
    if args.json is not None:
        args.json.write_text(json.dumps({"datetime": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "data": args.data,
                                         "master": args.master, "benchmarks": benchmarks}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
