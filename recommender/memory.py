"""Memory figures of the result line's `resources`: the one place their key names live, how a
process's peak resident set size (RSS) is read, and how it hands freed memory back (`hand_back_freed`).

What each key measures (all in bytes):

- `peak_rss_bytes` (PEAK_RSS), on every result line: the process that wrote the line. For torch that
  is the whole run; for the PySpark engines (python, torch-spark) the Python driver; for scala and java
  their JVM, which holds everything (`scala/src/main/scala/als/Memory.scala` writes the same key).
- `jvm_peak_rss_bytes` (JVM_PEAK_RSS), PySpark engines only: the driver JVM behind py4j, a second
  process beside the Python driver. In local mode the executors run in it, so it holds the cached
  ratings, ALS's blocks and the factors; on a cluster the executors' memory is not in it. MLlib's
  Python workers (the RDD API's parsing) are in neither figure.
- `peak_rss_bytes_max` (TASK_PEAK_RSS), torch-spark only: the largest peak among its barrier tasks'
  Python workers, which hold that engine's ratings (`recommender/tensor/on_spark/figures.py`, beside
  its other per-task figures).

torch on CUDA also records `peak_device_bytes` (PEAK_DEVICE), the most CUDA memory torch allocated: not RSS, and
not among these process peaks.

The peaks are read as VmHWM from /proc/<pid>/status, not as getrusage's ru_maxrss: on Linux a
process started by vfork and exec (posix_spawn, as both the JVM and Python's subprocess start one)
inherits its parent's ru_maxrss. Measured here: a Python started by spark-submit reports 148 MiB of
ru_maxrss and 13 MiB of VmHWM; one started by a Python holding 500 MiB, 511 MiB and 9 MiB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Mapping

import pyarrow as pa

PEAK_RSS = "peak_rss_bytes"
JVM_PEAK_RSS = "jvm_peak_rss_bytes"
TASK_PEAK_RSS = "peak_rss_bytes_max"
PROCESS_PEAKS = (PEAK_RSS, JVM_PEAK_RSS, TASK_PEAK_RSS)  # the RSS peaks of whole processes
PEAK_DEVICE = "peak_device_bytes"  # torch on CUDA: the most memory it allocated there
TASK_PEAK_DEVICE = "peak_device_bytes_max"  # torch-spark on CUDA: the largest task's


def peak_rss_bytes(pid: int | None = None) -> int | None:
    """The resident high-water mark (VmHWM) of process `pid`, this one if None, in bytes; None where
    /proc cannot tell (not Linux, no such process, or not ours to read)."""
    try:
        with open(f"/proc/{'self' if pid is None else pid}/status") as status:
            return next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")), None)
    except OSError:
        return None


def own_peak_rss_bytes() -> int:
    """This process's peak RSS in bytes: VmHWM, or off Linux (no /proc) getrusage's ru_maxrss,
    which macOS gives in bytes and the BSDs in KiB."""
    peak = peak_rss_bytes()
    if peak is not None:
        return peak
    import resource  # POSIX only; imported here, for Linux never needs it

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def largest_peak(resources: Mapping[str, float]) -> float | None:
    """The largest process peak (PROCESS_PEAKS) a result's `resources` carries, or None without one.
    The largest, not the sum: the processes need not peak at once, and the sum would count pages
    they share twice; the largest is what the run needed at least."""
    peaks = [resources[key] for key in PROCESS_PEAKS if key in resources]
    return max(peaks) if peaks else None


def hand_back_freed() -> None:
    """Return to the system the memory that Arrow's pool (mimalloc or jemalloc) and glibc's malloc keep
    after it is freed: a read of a billion ratings a batch at a time left 6 GB of it in RSS, in every
    later phase (measured on 132M ratings: 3.4 GB of RSS held 1.3 GB of tensors, 1.6 GB after this).
    glibc's `malloc_trim` only where the C library is glibc; elsewhere Arrow's pool alone."""
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux") and (libc := ctypes.util.find_library("c")) is not None:
        trim = getattr(ctypes.CDLL(libc), "malloc_trim", None)  # glibc's; musl has none
        if trim is not None:
            trim(0)
