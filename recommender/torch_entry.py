"""The PyTorch recommenders, as their own processes, with the shared options and result line.

    python recommender/torch_entry.py ratings.csv --api tensor --device cuda     # impl torch
    spark-submit recommender/torch_entry.py ratings.csv --api df --device cpu    # impl torch-spark
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.cli import add_als_arguments, params_from
from recommender.result import RunResult

IMPLS = {"tensor": "torch", "df": "torch-spark"}  # the API each PyTorch implementation uses


def run(args: argparse.Namespace) -> RunResult:
    params = params_from(args)
    if args.api == "tensor":
        from recommender.tensor import single as torch_engine

        return torch_engine.run(args.ratings, params, args.device, args.skip_bad_rows, args.data)
    from recommender.spark import session as spark_session
    from recommender.spark.job import run_job
    from recommender.tensor import on_spark as torch_spark

    config = spark_session.SessionConfig(master=None, driver_memory=None,
                                         checkpoint_dir=args.checkpoint_dir)
    spark = spark_session.start(config)
    try:
        engine = functools.partial(torch_spark.run, device=args.device)
        result = run_job(spark, args.ratings, args.api, params, args.data, args.skip_bad_rows,
                         engine=engine, impl="torch-spark")
    finally:
        spark.stop()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recommender/torch_entry.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ratings", help="ratings file: user,item,rating lines, no header")
    add_als_arguments(parser, apis=tuple(IMPLS))
    parser.add_argument("--data", default=None, help="data set name for the result line")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (tensor API only)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from recommender.spark.job import print_result

    return print_result(functools.partial(run, args))


if __name__ == "__main__":
    sys.exit(main())
