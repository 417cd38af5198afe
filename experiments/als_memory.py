"""`python -m experiments.als_memory [--data synthetic:ml-20m]`: the bytes per rating MLlib's ALS keeps cached.

Fits MLlib's DataFrame ALS on a data set's Parquet conversion in `local[2]` while a thread polls
Spark's storage info (`getRDDStorageInfo`), and prints the peak: the rule `emr/sizing.py` sizes
clusters by. The input, ALS's rating blocks, in- and out-blocks and factors are all in it.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence

from pyspark.ml.recommendation import ALS

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.sources import prepare
from recommender.spark.config import SessionConfig
from recommender.spark.loading import load_ratings
from recommender.spark.session import spark_session

POLL_S = 0.5


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.als_memory", description=__doc__)
    parser.add_argument("--data", default="synthetic:ml-20m")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args(argv)
    prepared = prepare(args.data)
    config = SessionConfig(master="local[2]", app_name="als-memory", driver_memory="12g")
    with spark_session(config) as spark:
        ratings, loaded = load_ratings(spark, prepared.input_for(reads_parquet=True), skip_bad_rows=False)
        storage = spark.sparkContext._jsc.sc()  # the JVM SparkContext
        peak: dict[str, int] = {}
        done = threading.Event()

        def poll() -> None:
            while not done.wait(POLL_S):
                sizes = {info.name(): info.memSize() + info.diskSize() for info in storage.getRDDStorageInfo()}
                if sum(sizes.values()) > sum(peak.values()):
                    peak.clear()
                    peak.update(sizes)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        ALS(rank=args.rank, maxIter=args.iterations, userCol=USER, itemCol=ITEM, ratingCol=RATING, seed=42) \
            .fit(ratings).userFactors.count()
        done.set()
        watcher.join()
    total = sum(peak.values())
    print(f"{args.data}: {loaded.ratings:,} ratings; peak cached {total:,} bytes = "
          f"{total / loaded.ratings:.1f} bytes per rating")
    for name, size in sorted(peak.items(), key=lambda item: -item[1]):
        print(f"  {size / loaded.ratings:6.1f}  {name.splitlines()[0][:60]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
