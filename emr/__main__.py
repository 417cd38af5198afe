"""`python -m emr`: the benchmark grid on AWS EMR without pytest.

    python -m emr estimate --grid study --gpu
    python -m emr run --grid study --bucket my-bucket [--gpu] [--keep] [--out results/emr.json]
    python -m emr launch --bucket my-bucket --gpu         # a cluster to reuse with run --cluster-id
    python -m emr fetch j-XXXX --out results/emr.json     # results of an earlier run's steps
    python -m emr list                                    # clusters this tool started, still up
    python -m emr terminate j-XXXX [j-YYYY ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import boto3

from emr import cost, launcher, run, sizing
from emr.launcher import Aws, EmrError, Storage
from emr.spec import DEFAULT_RELEASE, ClusterOptions, SpecError
from experiments.grid import GridError, Selection
from experiments.interrupts import stop_signals_raise


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", action="store_true", help="the GPU cluster (spark-rapids)")
    parser.add_argument("--release-label", default=DEFAULT_RELEASE)
    parser.add_argument("--master-type", default="m5.xlarge")
    parser.add_argument("--core-type", default=None, help="default m5.2xlarge, or g4dn.2xlarge with --gpu")
    parser.add_argument("--core-count", type=int, default=2)
    parser.add_argument("--spot", action="store_true", help="spot instead of on-demand")
    parser.add_argument("--subnet", default=None)
    parser.add_argument("--key-name", default=None)
    parser.add_argument("--idle-timeout", type=int, default=3600, help="seconds idle before EMR ends it")
    parser.add_argument("--prices", type=Path, default=cost.PRICES, help="price table (JSON)")


def _aws_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--endpoint-url", default=None, help="another endpoint (a moto server)")


def _grid_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", default="study", help="a grid of experiments/grid.toml")
    parser.add_argument("--rounds", type=int, default=None)
    for axis in ("impls", "apis", "datasets"):
        parser.add_argument(f"--{axis}", default=None, help=f"only these {axis}, comma-separated")
    parser.add_argument("--cores", default=None, help="only these core counts, comma-separated")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    estimate = commands.add_parser("estimate", help="what a grid would cost")
    _cluster_arguments(estimate)
    _grid_arguments(estimate)
    for name, text in (("run", "run a grid, collect, terminate"), ("launch", "start a cluster")):
        sub = commands.add_parser(name, help=text)
        _cluster_arguments(sub)
        _aws_arguments(sub)
        sub.add_argument("--bucket", required=True, help="S3 bucket for code, data, results and logs")
        sub.add_argument("--prefix", default=None, help="S3 folder (default als-benchmark/TIME-ID)")
        if name == "run":
            _grid_arguments(sub)
            sub.add_argument("--cluster-id", default=None, help="reuse this cluster (left running)")
            sub.add_argument("--keep", action="store_true", help="leave the cluster this run starts")
            sub.add_argument("--out", type=Path, default=None, help="default results/emr-TIME.json")
            sub.add_argument("--interval", type=float, default=30.0, help="seconds between polls")
    fetch = commands.add_parser("fetch", help="collect the results of a cluster's steps")
    fetch.add_argument("cluster_id")
    fetch.add_argument("--out", type=Path, required=True)
    _cluster_arguments(fetch)
    _aws_arguments(fetch)
    listing = commands.add_parser("list", help="clusters this tool started that are up")
    _aws_arguments(listing)
    stop = commands.add_parser("terminate", help="terminate clusters")
    stop.add_argument("cluster_ids", nargs="+")
    _aws_arguments(stop)
    return parser


def _options(args: argparse.Namespace, bucket: str | None = None, prefix: str = "") -> ClusterOptions:
    return ClusterOptions(
        gpu=args.gpu, release_label=args.release_label, region=getattr(args, "region", "us-east-1"),
        master_type=args.master_type, core_type=args.core_type, core_count=args.core_count,
        market="SPOT" if args.spot else "ON_DEMAND", subnet_id=args.subnet, key_name=args.key_name,
        log_uri=f"s3://{bucket}/{prefix}/logs/" if bucket else None, idle_timeout_s=args.idle_timeout,
    )


def _selection(args: argparse.Namespace) -> Selection:
    def split(value: str | None) -> list[str] | None:
        return [v.strip() for v in value.split(",")] if value else None

    cores = split(args.cores)
    return Selection(impls=split(args.impls), apis=split(args.apis), data=split(args.datasets),
                     cores=[int(c) for c in cores] if cores else None)


def _aws(args: argparse.Namespace) -> Aws:
    return Aws(args.region, args.endpoint_url, boto3.session.Session(profile_name=args.profile))


def _command(args: argparse.Namespace) -> int:
    """The chosen command; its errors are the caller's."""
    if args.command == "estimate":
        options = _options(args, "bucket")
        plan = run.build_plan(args.grid, args.gpu, _selection(args), args.rounds, prepare_data=False,
                              cores=run.cluster_cores(options, args.prices))
        estimate = run.plan_estimate(options, plan, args.prices)
        node = sizing.node(options, args.prices)
        print(f"{len(plan.cases)} cases x {plan.rounds} rounds on {options.core_count} x {node.instance_type} "
              f"({node.vcpus} vCPUs, {node.executor_memory_gib} GiB of executor heap each)")
        print(estimate.line())
        print(run.size_problem(options, plan, args.prices) or "the cluster holds every data set in memory")
        for name in plan.expansions:
            hours = cost.generation_hours(plan.ratings[name], node.vcpus * options.core_count)
            print(f"  generate {name} ({plan.ratings[name]:,} ratings expected): about {hours * 60:.1f} min")
        for case in plan.cases:
            hours = cost.case_hours(case.impl, case.api, plan.ratings.get(case.data, 0), case.cores)
            print(f"  {case.id}: about {hours * 60:.1f} min, "
                  f"{hours * estimate.usd_per_hour:.2f} {estimate.currency} a round")
        return 0
    aws = _aws(args)
    if args.command == "list":
        for cluster in launcher.ours(aws):
            print(cluster["Id"], cluster["Status"]["State"], cluster["Name"])
        return 0
    if args.command == "terminate":
        for cluster_id in args.cluster_ids:
            launcher.terminate(aws, cluster_id)
            print(f"terminated {cluster_id}")
        return 0
    if args.command == "fetch":
        print(run.fetch(aws, _options(args, "bucket"), args.cluster_id, args.out))
        return 0
    storage = Storage(args.bucket, args.prefix or launcher.new_prefix())
    options = _options(args, args.bucket, storage.prefix)
    if args.command == "launch":
        aws.check_bucket(args.bucket)
        launcher.upload(aws, storage, {})
        print(launcher.launch(aws, options, storage))
        return 0
    plan = run.build_plan(args.grid, args.gpu, _selection(args), args.rounds,
                          cores=run.cluster_cores(options, args.prices))
    out = args.out or Path("results") / f"emr-{datetime.now():%Y%m%d-%H%M%S}.json"
    print(run.run_grid(aws, options, storage, plan, out, args.cluster_id, args.keep, args.interval,
                       args.prices))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with stop_signals_raise():  # a kill or a closed terminal (SIGHUP) terminates the cluster too
        try:
            return _command(args)
        except (EmrError, SpecError, GridError, cost.PriceError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as stop:  # the launcher's finally blocks have terminated its cluster
            print(f"interrupted ({stop or 'Ctrl-C'})", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
