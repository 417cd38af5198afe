"""The command line: `python -m recommender run|data|generate ...`."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

from recommender.data.formats import BadInputError
from recommender.params import ALSParams
from recommender.result import RunResult


def add_als_arguments(parser: argparse.ArgumentParser, apis: Sequence[str] = ("rdd", "df")) -> None:
    """The options every implementation shares (the Scala and Java programs take the same)."""
    defaults = ALSParams()
    parser.add_argument("--api", choices=apis, default=apis[-1], help=f"API (default {apis[-1]})")
    parser.add_argument("--rank", type=int, default=defaults.rank)
    parser.add_argument("--iterations", type=int, default=defaults.iterations)
    parser.add_argument("--reg", type=float, default=defaults.reg, help="regularization (lambda)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--blocks", type=int, default=None, help="ALS blocks (default: parallelism)")
    parser.add_argument("--holdout", type=float, default=0.0, help="fraction held out for RMSE/MAE")
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip and count bad lines")
    parser.add_argument("--checkpoint-dir", default=None, help="default: a new /tmp folder")


def params_from(args: argparse.Namespace) -> ALSParams:
    return ALSParams(args.rank, args.iterations, args.reg, args.seed, args.blocks, args.holdout)


def parse_confs(pairs: Sequence[str]) -> dict[str, str]:
    confs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--conf {pair!r}: expected KEY=VALUE")
        confs[key] = value
    return confs


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None, help="MovieLens mirror folder")
    parser.add_argument("--cache-dir", type=Path, default=None, help="downloads and conversions")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recommender", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the recommender and print its result line")
    run.add_argument("--data", required=True, help="ml-100k, synthetic:ml-20m[:SEED], or a file")
    run.add_argument("--impl", choices=("python", "scala", "java", "torch", "torch-spark"),
                     default="python", help="implementation (scala and java are built and "
                     "spark-submitted; torch runs without Spark; torch-spark uses the df API)")
    add_als_arguments(run)
    run.add_argument("--device", default="cpu", help="torch engines: cpu, cuda or cuda:N")
    run.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    run.add_argument("--driver-memory", default="4g")
    run.add_argument("--conf", action="append", default=[], help="extra Spark conf KEY=VALUE")
    _data_options(run)

    data = commands.add_parser("data", help="download/convert or generate a data set")
    data.add_argument("name", help="ml-100k, synthetic:ml-20m[:SEED], ...")
    _data_options(data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "data":
            return _data(args)
        return _run(args)
    except (BadInputError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _data(args: argparse.Namespace) -> int:
    from recommender.data.sources import prepare

    prepared = prepare(args.name, args.data_dir, args.cache_dir)
    print(f"{prepared.name}: {prepared.ratings:,} ratings -> {prepared.csv}, {prepared.parquet}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from recommender.data.sources import prepare
    from recommender.spark.job import summary

    params = params_from(args)
    prepared = prepare(args.data, args.data_dir, args.cache_dir)
    if args.impl in ("scala", "java"):
        return _run_jvm(args, params, prepared.csv, prepared.name)
    result = _run_python(args, params, prepared.csv, prepared.name)
    print(summary(result))
    print(result.to_line(), flush=True)
    return 0


def _run_python(args: argparse.Namespace, params: ALSParams, csv: str, name: str) -> RunResult:
    """The in-process implementations: MLlib through PySpark, and the PyTorch engines."""
    if args.impl == "torch":
        from recommender.tensor import single as torch_engine

        return torch_engine.run(csv, params, args.device, args.skip_bad_rows, name)
    from recommender.spark import session as spark_session
    from recommender.spark.job import run_job

    config = spark_session.SessionConfig(
        master=args.master,
        driver_memory=args.driver_memory,
        checkpoint_dir=args.checkpoint_dir,
        confs=parse_confs(args.conf),
    )
    spark = spark_session.start(config)
    try:
        if args.impl == "torch-spark":
            from recommender.tensor import on_spark as torch_spark

            engine = functools.partial(torch_spark.run, device=args.device)
            return run_job(spark, csv, "df", params, name, args.skip_bad_rows, engine=engine,
                           impl="torch-spark")
        return run_job(spark, csv, args.api, params, name, args.skip_bad_rows)
    finally:
        spark.stop()


def _run_jvm(args: argparse.Namespace, params: ALSParams, csv: str, name: str) -> int:
    """Build the jar if needed and spark-submit it; its output, result line included, passes through."""
    import subprocess

    from recommender.launch import jvm

    if args.impl == "java" and args.api != "rdd":
        raise ValueError("the Java recommender implements the rdd API only")
    cmd = jvm.submit_command(
        args.impl, csv, args.api, params, args.master, parse_confs(args.conf), name,
        args.driver_memory, args.skip_bad_rows,
    )
    if args.checkpoint_dir:
        cmd += ["--checkpoint-dir", args.checkpoint_dir]
    jvm.build_jar()
    return subprocess.run(cmd, env=jvm.submit_env()).returncode
