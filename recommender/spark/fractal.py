"""Generating a fractal expansion with Spark: one task per block row, writing Parquet parts anywhere.

The plan (base matrix and keep-probabilities, a few MB for ml-20m's 20M ratings) is broadcast
once; each task writes its block row's part with the same function the local loop uses, so the
bytes are the same, and parts already recorded as done are not scheduled again. A base given
as a Hadoop path (`fractal:s3://bucket/ratings.parquet:16x32`) is read by Spark on the driver.

    spark-submit recommender/spark/fractal.py fractal:ml-20m:16x32 s3://bucket/ml-20mx16x32 [--csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

if __package__ in (None, ""):  # run as a script by spark-submit: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyspark.sql import SparkSession

from recommender.data.fractal import Base, base_from_frame, check_id_range, parse_fractal, probabilities
from recommender.data.fractal_output import Manifest, Plan, write_expansion, write_part
from recommender.data.readers import ITEM, RATING, USER
from recommender.data.sources import default_cache_dir, default_data_dir, fractal_base
from recommender.spark import session


def write_rows_on_spark(spark: SparkSession, plan: Plan, rows: list[int]) -> None:
    """Write the parts of `rows`, one Spark task each."""
    if not rows:
        return
    shared = spark.sparkContext.broadcast(plan)
    try:
        spark.sparkContext.parallelize(rows, len(rows)).map(lambda row: write_part(shared.value, row).row).collect()
    finally:
        shared.unpersist()


def read_base(spark: SparkSession, path: str) -> tuple[Base, dict[str, object]]:
    """A base from any Hadoop path: Parquet with user, item, rating columns, or the study's CSV."""
    if path.rstrip("/").endswith(".parquet"):
        frame = spark.read.parquet(path).select(USER, ITEM, RATING)
    else:
        schema = f"{USER} INT, {ITEM} INT, {RATING} FLOAT"
        frame = spark.read.csv(path, schema=schema, mode="FAILFAST")
    files = sorted(frame.inputFiles())
    return base_from_frame(frame.toPandas()), {"path": path, "files": files}


def expand(spark: SparkSession, name: str, out: str, csv: bool = False) -> Manifest:
    """Write expansion `name` into `out` (any Hadoop path) with Spark tasks, resuming what is there."""
    spec = parse_fractal(name)
    if urlparse(spec.base).scheme:
        base, source = read_base(spark, spec.base)
    else:
        base, source = fractal_base(spec.base, default_data_dir(), default_cache_dir())
    check_id_range(spec, base)
    plan = Plan(spec, base, probabilities(base, spec.rows, spec.cols), out, csv)
    return write_expansion(plan, source, lambda p, rows: write_rows_on_spark(spark, p, rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a fractal expansion with Spark.")
    parser.add_argument("name", help="fractal:BASE:RxC[:SEED]")
    parser.add_argument("out", help="output folder: a local path or a Hadoop URI")
    parser.add_argument("--csv", action="store_true", help="also write the study's CSV")
    args = parser.parse_args(argv)
    spark = session.start(session.SessionConfig(master=None, app_name="fractal-expansion", driver_memory=None))
    try:
        manifest = expand(spark, args.name, args.out, args.csv)
    finally:
        spark.stop()
    print(f"{manifest.name}: {manifest.ratings:,} ratings, {manifest.users:,} users, {manifest.items:,} items "
          f"in {manifest.seconds:.1f} s -> {manifest.parquet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
