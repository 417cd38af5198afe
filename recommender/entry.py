"""`spark-submit recommender/entry.py ratings.csv [options]`, as the original study ran it.

The one script for every in-process implementation of the registry: PySpark MLlib (the default,
`--impl python`) and torch-spark under spark-submit, whose master, executors and memory come from
spark-submit; and single-node torch as a plain process (`python recommender/entry.py ratings.csv
--impl torch --device cuda`). The options are those of `python -m recommender run`; it prints the
same result line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.cli import add_job_arguments, job_from
from recommender.launch import registry
from recommender.launch.in_process import report
from recommender.result import RunResult
from recommender.spark.config import SessionConfig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark-submit recommender/entry.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ratings", help="ratings file: user,item,rating lines, no header")
    add_job_arguments(parser, [impl for impl in registry.IMPLEMENTATIONS if impl.engine is not None])
    parser.add_argument("--data", default=None, help="data set name for the result line")
    args = parser.parse_args(argv)
    session = SessionConfig(master=None, driver_memory=None, checkpoint_dir=args.checkpoint_dir)

    def compute() -> RunResult:
        from recommender.launch import in_process

        impl, job = job_from(args, args.ratings, args.data or args.ratings)
        return in_process.run(impl, job, session)

    return report(compute)


if __name__ == "__main__":
    sys.exit(main())
