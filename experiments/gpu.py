"""`python -m experiments.gpu`: the GPU answer in one command, on a bare CUDA machine.

Needs PyTorch, numpy, pandas, pyarrow, pytest and pytest-benchmark; no Java, no pyspark, no
network. Runs the `gpu` tests (CUDA equals the CPU to float32 accuracy, rows without ratings,
ranks up to 128), then the PyTorch engine on CUDA against the same engine on every CPU core
(`experiments/tensor_bench.py`), into pytest-benchmark JSON that `python -m experiments.compare`
merges with the CPU grid's runs. Without a CUDA device it says so in one line and exits 2.

    python -m experiments.gpu                                       # CUDA and CPU; ml-20m and ml-25m shapes
    python -m experiments.gpu --devices cpu --data synthetic:ml-1m  # the CPU side alone, anywhere
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "experiments" / "tensor_bench.py"
CUDA_TESTS = ROOT / "tests" / "recommender" / "tensor" / "test_cuda.py"


def cuda_problem() -> str | None:
    """Why this machine cannot run the CUDA side, or None."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (pip install -r requirements-torch.txt)"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="cuda,cpu", help="cuda, cpu or both (default cuda,cpu)")
    parser.add_argument("--data", default="synthetic:ml-20m,synthetic:ml-25m", help="data sets, comma-separated")
    parser.add_argument("--ranks", default="10,32,64,128", help="ranks on CUDA (default 10,32,64,128)")
    parser.add_argument("--cpu-ranks", default="10,32",
                        help="ranks on the CPU (default 10,32: higher ones take minutes)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--top-k", type=int, default=10, help="the recommend phase's k (0: no recommend phase)")
    parser.add_argument("--rounds", type=int, default=1, help="timed rounds per case (CUDA adds one warm-up)")
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="where the JSON goes")
    parser.add_argument("--label", default=None, help="names this machine in reports")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if not devices or set(devices) - {"cuda", "cpu"}:
        print(f"error: --devices {args.devices!r}: expected cuda, cpu or cuda,cpu", file=sys.stderr)
        return 2
    problem = cuda_problem() if "cuda" in devices else None
    if problem:
        print(f"error: no CUDA here: {problem}; `--devices cpu` runs the CPU side alone", file=sys.stderr)
        return 2
    args.results.mkdir(parents=True, exist_ok=True)
    json_path = args.results / f"gpu-{platform.node()}-{datetime.now():%Y%m%d-%H%M%S}.json"
    tests = [str(CUDA_TESTS)] if "cuda" in devices else []
    cmd = [sys.executable, "-m", "pytest", *tests, str(BENCH), f"--benchmark-json={json_path}",
           f"--tensor-devices={','.join(devices)}", f"--tensor-data={args.data}", f"--tensor-ranks={args.ranks}",
           f"--tensor-cpu-ranks={args.cpu_ranks}", f"--tensor-iterations={args.iterations}",
           f"--tensor-top-k={args.top_k}", f"--tensor-rounds={args.rounds}", "--benchmark-columns=min,mean,rounds"]
    if args.label:
        cmd.append(f"--label={args.label}")
    print("running:", " ".join(cmd), flush=True)
    code = subprocess.run(cmd, cwd=ROOT).returncode
    if json_path.exists():
        from experiments.tensor_table import summary

        print(summary(json_path))
        print(f"\nresults: {json_path}\nmerge with CPU runs: python -m experiments.compare results/*.json")
    return code


if __name__ == "__main__":
    sys.exit(main())
