"""Peak resident memory on the result line (recommender/memory.py): how a process's peak is read, and
the figures real small runs report, torch in this process and MLlib's DataFrame API in the shared
Spark session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from recommender import memory
from recommender.data.sources import prepare
from recommender.params import ALSParams
from recommender.result import parse_result_line, schema
from tests.engines import plausible_peak, run_engine

PARAMS = ALSParams(rank=8, iterations=5, reg=0.1, seed=42, holdout=0.2)
HELD = 300 << 20  # what the parent below holds when it starts its child


@pytest.fixture(scope="module")
def ml100k(movielens_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return prepare("ml-100k", movielens_dir, tmp_path_factory.mktemp("cache")).csv


@pytest.mark.unit
def test_a_child_reports_its_own_peak_not_its_parents() -> None:
    """A process started by one holding 300 MiB peaks far below it; getrusage's ru_maxrss would
    say otherwise on Linux (it inherits the parent's across vfork and exec)."""
    child = ("import resource\nfrom recommender.memory import own_peak_rss_bytes\n"
             "print(own_peak_rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    parent = (f"import subprocess, sys\nheld = bytearray({HELD})\nheld[::4096] = b'1' * len(held[::4096])\n"
              f"subprocess.run([sys.executable, '-c', {child!r}], check=True)")
    out = subprocess.run([sys.executable, "-c", parent], cwd=ROOT, capture_output=True, text=True, check=True)
    ours, maxrss = map(int, out.stdout.split())
    assert 0 < ours < HELD // 3, f"peak {ours:,} bytes; ru_maxrss says {maxrss:,}"


@pytest.mark.unit
def test_the_peak_of_another_process_is_read_while_it_lives() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        peak = memory.peak_rss_bytes(sleeper.pid)
        assert peak is not None and 0 < peak < memory.own_peak_rss_bytes()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert memory.peak_rss_bytes(sleeper.pid) is None  # reaped: /proc cannot tell


@pytest.mark.unit
def test_the_largest_process_peak_leaves_other_figures_out() -> None:
    resources = {memory.PEAK_RSS: 1.5e8, memory.JVM_PEAK_RSS: 7e8, memory.TASK_PEAK_RSS: 4e8,
                 "peak_device_bytes": 9e9, "held_bytes_max": 8e9, "tasks": 4.0}
    assert memory.largest_peak(resources) == 7e8
    assert memory.largest_peak({"peak_device_bytes": 9e9}) is None


@pytest.mark.unit
def test_the_schema_describes_every_process_peak() -> None:
    assert set(schema()["properties"]["resources"]["properties"]) == set(memory.PROCESS_PEAKS)


@pytest.mark.torch
def test_a_torch_result_line_carries_this_processs_peak(ml100k: str) -> None:
    result = parse_result_line(run_engine("torch", ml100k, params=PARAMS, data="ml-100k").to_line())
    peak = result["resources"][memory.PEAK_RSS]
    assert plausible_peak(peak) and peak <= memory.own_peak_rss_bytes()  # read at the end of this run
    assert memory.JVM_PEAK_RSS not in result["resources"]


@pytest.mark.spark
def test_a_pyspark_result_line_carries_the_drivers_and_the_jvms_peaks(spark: Any, ml100k: str) -> None:
    from recommender.spark.engines import jvm_resources

    result = parse_result_line(run_engine("python", ml100k, "df", PARAMS, data="ml-100k", spark=spark).to_line())
    resources = result["resources"]
    assert plausible_peak(resources[memory.PEAK_RSS]) and resources[memory.PEAK_RSS] <= memory.own_peak_rss_bytes()
    assert plausible_peak(resources[memory.JVM_PEAK_RSS])
    assert resources[memory.JVM_PEAK_RSS] <= jvm_resources(spark)[memory.JVM_PEAK_RSS]  # the session's JVM
    assert memory.largest_peak(resources) == max(resources[memory.PEAK_RSS], resources[memory.JVM_PEAK_RSS])
