"""`spark-submit recommender/entry.py ratings.csv [options]`, as the original study ran it.

The master, executors and memory come from spark-submit; the options are the ALS ones of
`python -m recommender run`. Prints the same result line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.cli import add_als_arguments, params_from
from recommender.result import RunResult


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark-submit recommender/entry.py")
    parser.add_argument("ratings", help="ratings file: user,item,rating lines, no header")
    add_als_arguments(parser)
    parser.add_argument("--data", default=None, help="data set name for the result line")
    args = parser.parse_args(argv)

    from recommender.spark import session as spark_session
    from recommender.spark.job import print_result, run_job

    def compute() -> RunResult:
        params = params_from(args)
        config = spark_session.SessionConfig(
            master=None, driver_memory=None, checkpoint_dir=args.checkpoint_dir
        )
        spark = spark_session.start(config)
        try:
            return run_job(spark, args.ratings, args.api, params, args.data, args.skip_bad_rows)
        finally:
            spark.stop()

    return print_result(compute)


if __name__ == "__main__":
    sys.exit(main())
