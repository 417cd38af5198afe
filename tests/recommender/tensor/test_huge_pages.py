"""The PyTorch engines back their large CPU tensors with transparent huge pages where the kernel allows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the PyTorch engines need torch: pip install -r requirements-torch.txt")

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
# A fresh process: the engine's import, then one 64 MiB tensor touched, then its huge pages in kB.
PROBE = """
import recommender.tensor.als
import torch
tensor = torch.ones(64 << 20, dtype=torch.uint8)
print(next(line.split()[1] for line in open("/proc/self/smaps_rollup") if line.startswith("AnonHugePages")))
"""


def _huge_kb(env: dict[str, str]) -> int:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return int(proc.stdout.split()[-1])


@pytest.mark.skipif(not THP.exists() or "[madvise]" not in THP.read_text(),
                    reason="this kernel gives huge pages to every process or to none: only its madvise mode "
                           "leaves them to each program (/sys/kernel/mm/transparent_hugepage/enabled)")
def test_the_engines_tensors_get_huge_pages_unless_the_environment_says_no() -> None:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    assert _huge_kb(env) >= 32 << 10  # most of the 64 MiB
    assert _huge_kb(env | {"THP_MEM_ALLOC_ENABLE": "0"}) < 32 << 10  # the user's choice wins
