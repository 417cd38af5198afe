"""`python -m experiments [--grid local] [--out report] [-- PYTEST OPTIONS]`: the main job.

Runs the grid (each case its own spark-submit, timed by pytest-benchmark) into
results/GRID-HOST-TIME.json, then the compare script on it, and says where the report is.
Options after `--` go to pytest, e.g. `-- --spark-master standalone --rounds 3`.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from experiments import compare, environment, grid, results
from experiments.interrupts import stop_signals_raise

ROOT = Path(__file__).resolve().parents[1]
ONE_MACHINE = ("local", "standalone")  # --spark-master values that keep every case on this machine


def check_grid(name: str, pytest_args: Sequence[str], memory_gib: float | None = None) -> None:
    """A GridError, before pytest starts, for an unknown grid, a cluster-only grid on this machine, or a
    grid that needs more memory than this machine's (`memory_gib`, the machine's when None)."""
    chosen = grid.load().grid(name)
    master = pytest_args[pytest_args.index("--spark-master") + 1] if "--spark-master" in pytest_args[:-1] else "local"
    if chosen.cluster_only and master.startswith(ONE_MACHINE):
        raise grid.GridError(f"grid {name!r} is too large for one machine: run it on EMR (python -m emr run "
                             f"--grid {name} ..., emr/README.md) or on a cluster (-- --spark-master spark://HOST:PORT)")
    have = environment.memory_gb() if memory_gib is None else memory_gib
    if chosen.memory is not None and have is not None and have < chosen.memory.gib:
        raise grid.GridError(f"grid {name!r} needs {chosen.memory.gib:g} GiB of memory ({chosen.memory.reason}), "
                             f"and this machine has {have:g} GiB")


def _has_cases(path: Path) -> bool:
    """Whether pytest-benchmark wrote `path` with at least one case."""
    try:
        return bool(json.loads(path.read_text()).get("benchmarks"))
    except (OSError, ValueError, AttributeError):
        return False


def _interruptible() -> None:
    """In the child before it starts: Ctrl-C's default action, which a job started in the background
    (`&`, nohup, CI) inherits as ignored, so that pytest still turns our SIGINT into an orderly stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_grid(cmd: list[str]) -> int:
    """pytest's exit code for the grid. A stop signal (SIGTERM, SIGHUP) reaches pytest as Ctrl-C does,
    so it ends the running case and still writes the cases that finished; a second one kills it."""
    child = subprocess.Popen(cmd, cwd=ROOT, preexec_fn=_interruptible)
    try:
        try:
            return child.wait()
        except KeyboardInterrupt as interrupt:
            if str(interrupt).startswith("signal"):  # ours: Ctrl-C reached pytest's process group already
                child.send_signal(signal.SIGINT)
            return child.wait()
    except KeyboardInterrupt:
        child.kill()
        child.wait()
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="local", help="a grid of experiments/grid.toml (default local)")
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="where the JSON goes")
    parser.add_argument("--out", type=Path, default=ROOT / "report", help="where the report goes")
    args = parser.parse_args(argv)
    try:
        check_grid(args.grid, extra)
    except grid.GridError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = args.results / f"{args.grid}-{platform.node()}-{stamp}.json"
    partial = json_path.with_name(json_path.name + ".part")  # results/*.json never holds a run still going
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "grid" / "test_cases.py"),
           "-m", "grid", "--grid", args.grid, f"--benchmark-json={partial}", *extra]
    print("running:", " ".join(cmd), flush=True)
    try:
        with stop_signals_raise():
            code = run_grid(cmd)
    finally:
        if _has_cases(partial):
            partial.replace(json_path)
        else:
            partial.unlink(missing_ok=True)
    if code != 0:
        print(f"some cases failed or were interrupted (pytest exit {code}); reporting the ones that finished",
              file=sys.stderr)
    if not json_path.exists():  # keep results/*.json usable by compare
        print(f"error: no case finished, so there is nothing to report (no {json_path.name} kept)", file=sys.stderr)
        return code or 2
    try:
        report = compare.write_report([json_path], args.out)
    except (results.ResultsFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return code or 2
    print(f"\nresults: {json_path}\nreport:  {report}\nplots:   {args.out}/*.png\n"
          f"compare several runs: python -m experiments.compare {args.results}/*.json")
    return code


if __name__ == "__main__":
    sys.exit(main())
