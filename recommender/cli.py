"""The command line: `python -m recommender run|data ...`, and the job options that the entry
script, the Scala and the Java programs share (derived from the registry and `ALSParams`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from recommender.engine import Job, check
from recommender.launch import registry
from recommender.launch.in_process import report
from recommender.launch.registry import Implementation
from recommender.params import IMPLICIT_DEFAULTS, ALSParams, flag, param_fields


def add_job_arguments(parser: argparse.ArgumentParser, impls: Sequence[Implementation]) -> None:
    """--impl and --api, every ALS parameter, and the options of a run's input and device."""
    names = [impl.name for impl in impls]
    parser.add_argument("--impl", choices=names, default=registry.DEFAULT,
                        help=f"implementation (default {registry.DEFAULT}): {registry.help_text()}")
    parser.add_argument("--api", choices=registry.APIS, default=None,
                        help="Spark API: rdd (mllib), df (ml), none (no Spark); default: the implementation's last")
    for f in param_fields():
        if f.metadata["type"] is bool:
            parser.add_argument(flag(f.name), action="store_true", help=f.metadata["help"])
            continue
        default = "" if f.default is None else f" (default {f.default}" + (
            f"; {IMPLICIT_DEFAULTS[f.name]} with --implicit)" if f.name in IMPLICIT_DEFAULTS else ")")
        parser.add_argument(flag(f.name), type=f.metadata["type"], default=None, choices=f.metadata["choices"],
                            help=f.metadata["help"] + default)
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip and count bad lines instead of stopping")
    parser.add_argument("--unique-pairs", action="store_true",
                        help="the (user, item) pairs are known to be unique (a conversion this suite validated), "
                             "so the repeated-pair pass is skipped; `run` sets it for the data sets it prepares")
    parser.add_argument("--checkpoint-dir", default=None, help="ALS checkpoints (default: a new /tmp folder, removed)")
    parser.add_argument("--device", default="cpu", help="torch engines: cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="single-node torch: CPU threads")
    parser.add_argument("--top-k", type=int, default=0,
                        help="the recommend phase: the K best items for every user (default 0: none)")
    parser.add_argument("--include-rated", action="store_true",
                        help="let a user's training items into their recommendations (default: left out)")
    parser.add_argument("--test", default=None, metavar="FILE",
                        help="a test ratings file (the formats of --data) evaluated instead of a random --holdout")
    parser.add_argument("--clip", default=None, metavar="LOW,HIGH",
                        help="clip holdout predictions to the rating scale for RMSE/MAE; `run` defaults to the data "
                             "set's scale (MovieLens, synthetic), `off` for none (MLlib itself does not clip)")
    parser.add_argument("--relevance", type=float, default=None, metavar="RATING",
                        help="ranking metrics: held-out ratings at least RATING are relevant (default: every one)")


def job_from(args: argparse.Namespace, path: str, data: str) -> tuple[Implementation, Job]:
    """The implementation and the job the parsed options ask for (keyword arguments only)."""
    impl = registry.get(args.impl)
    params = ALSParams.of({f.name: getattr(args, f.name) for f in param_fields()})
    api = args.api or impl.apis[-1]
    registry.check_api(impl, api)
    job = Job(api, path, data, params, args.skip_bad_rows, args.device, args.threads, args.top_k,
              not args.include_rated, args.relevance, args.test, parse_clip(args.clip), args.unique_pairs)
    return impl, job


def parse_clip(text: str | None) -> tuple[float, float] | None:
    """`LOW,HIGH` as two numbers; None or `off`: no clipping."""
    if text is None or text == "off":
        return None
    low, _, high = text.partition(",")
    try:
        return float(low), float(high)
    except ValueError:
        raise ValueError(f"--clip {text!r}: expected LOW,HIGH (two numbers) or off") from None


def parse_confs(pairs: Sequence[str]) -> dict[str, str]:
    confs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--conf {pair!r}: expected KEY=VALUE")
        confs[key] = value
    return confs


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None, help="MovieLens mirror folder")
    parser.add_argument("--cache-dir", type=Path, default=None, help="downloads and conversions")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recommender", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the recommender and print its result line")
    run.add_argument("--data", required=True,
                     help="ml-100k, synthetic:ml-20m[:SEED], fractal:BASE:RxC[:SEED], positives:R:NAME "
                          "(NAME's ratings >= R, each as 1: implicit feedback), or a ratings file")
    add_job_arguments(run, registry.IMPLEMENTATIONS)
    run.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    run.add_argument("--driver-memory", default="4g")
    run.add_argument("--conf", action="append", default=[], help="extra Spark conf KEY=VALUE")
    _data_options(run)

    data = commands.add_parser("data", help="download/convert or generate a data set")
    data.add_argument("name", help="ml-100k, synthetic:ml-20m[:SEED], fractal:BASE:RxC[:SEED], ...")
    data.add_argument("--stats", type=Path, default=None, metavar="OUTDIR",
                      help="fractal:... only: write its statistics against the base (table, degree and scree plots)")
    data.add_argument("--csv", action="store_true",
                      help="fractal:... only: write the study's CSV too, for the engines that read text (every "
                           "other set has it; Parquet alone otherwise: 1.2 billion lines of text are over 20 GB)")
    _data_options(data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "data":
        return _data(args)
    return _run(args)


def _data(args: argparse.Namespace) -> int:
    from recommender.data.readers import read_ratings
    from recommender.data.scale import outside_warning
    from recommender.data.sources import prepare

    try:
        prepared = prepare(args.name, args.data_dir, args.cache_dir, text=args.csv)
        # A file of the user's: check every line, naming the first bad one.
        frame = read_ratings(prepared.input_for(reads_parquet=False)).frame if prepared.ratings is None else None
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if frame is not None:
        print(f"{prepared.name}: {len(frame):,} ratings, every line valid")
        warning = outside_warning(frame["rating"].to_numpy())
        if warning is not None:  # a user's file declares no scale: see recommender/data/scale.py
            print(f"warning: {prepared.csv}: {warning}", file=sys.stderr)
        return 0
    print(f"{prepared.name}: {prepared.ratings:,} ratings -> {prepared.csv}, {prepared.parquet}")
    if args.stats is not None:
        from recommender.data.fractal_stats import report_for

        print(f"statistics: {report_for(args.name, args.stats, args.data_dir, args.cache_dir)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from recommender.data.sources import prepare, rating_scale, validated_conversion
    from recommender.launch.submit import check_master, local_confs

    try:
        check_master(args.master)
        confs = local_confs(args.master, parse_confs(args.conf))  # as the grid's for a local master
        impl = registry.get(args.impl)
        prepared = prepare(args.data, args.data_dir, args.cache_dir, text=not impl.reads_parquet)
        impl, job = job_from(args, prepared.input_for(impl.reads_parquet), prepared.name)
        if args.clip is None:  # the default: the data set's own scale, where it has one
            job = replace(job, clip=rating_scale(args.data))
        if validated_conversion(args.data) and args.test is None:  # checked when made: no repeated-pair pass
            job = replace(job, unique_pairs=True)
        if job.test is None and prepared.test_csv is not None:  # a predefined split: `--data ml-100k:u1`
            job = replace(job, test=prepared.test_for(impl.reads_parquet))
        check(impl, job)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if impl.engine is None:
        return _run_jvm(impl, job, args, confs)
    from recommender.launch import in_process
    from recommender.spark.config import SessionConfig

    session = SessionConfig(master=args.master, driver_memory=args.driver_memory,
                            checkpoint_dir=args.checkpoint_dir, confs=confs)
    return report(lambda: in_process.run(impl, job, session))


def _run_jvm(impl: Implementation, job: Job, args: argparse.Namespace, confs: dict[str, str]) -> int:
    """Build the jar if needed and spark-submit it; its output, result line included, passes through."""
    import subprocess

    from recommender.launch import jvm
    from recommender.launch.submit import Launch, command, job_arguments, submit_env

    launch = Launch(master=args.master, driver_memory=args.driver_memory, confs=confs)
    cmd = command(impl, job_arguments(job, args.checkpoint_dir), launch)
    jvm.build_jar()
    return subprocess.run(cmd, env=submit_env()).returncode
