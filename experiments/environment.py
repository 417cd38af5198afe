"""What a benchmark ran on: Java, Spark and Scala versions, CPU and GPU models, the master."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Environment:
    label: str
    master: str
    java: str | None
    spark: str | None
    scala: str | None
    cpu_model: str
    cpu_count: int
    memory_gb: float | None
    gpus: list[str]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def java_version() -> str | None:
    """The first line of `java -version`, e.g. 'openjdk version "17.0.15" 2025-04-15'."""
    if shutil.which("java") is None:
        return None
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    return out.splitlines()[0].strip() if out else None


def spark_versions() -> tuple[str | None, str | None]:
    """The Spark version of pyspark and the Scala version of the scala-library it ships; (None, None)
    where pyspark is not installed (a bare CUDA machine running the PyTorch engine alone)."""
    try:
        import pyspark
    except ImportError:
        return None, None

    jars = Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent) / "jars"
    scala = next((m.group(1) for p in sorted(jars.glob("scala-library-*.jar"))
                  if (m := re.match(r"scala-library-(.+)\.jar", p.name))), None)
    return pyspark.__version__, scala


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size / 2**30, 1)


def gpus() -> list[str]:
    """The NVIDIA GPUs that nvidia-smi sees, as 'name, memory' strings; [] without any."""
    if shutil.which("nvidia-smi") is None:
        return []
    proc = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
        capture_output=True, text=True,
    )
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()] if proc.returncode == 0 else []


def describe(master: str, label: str | None = None) -> Environment:
    spark, scala = spark_versions()
    return Environment(
        label=label or f"{platform.node()} ({master})",
        master=master,
        java=java_version(),
        spark=spark,
        scala=scala,
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        memory_gb=memory_gb(),
        gpus=gpus(),
    )


@dataclass(frozen=True)
class LoadSample:
    """The machine's 1-minute load average, this process's children's CPU seconds, a clock, and the CPU
    seconds the whole machine has been busy (/proc/stat; None where there is none)."""

    load_1m: float
    children_cpu_s: float
    monotonic_s: float
    machine_cpu_s: float | None = None


PROC_STAT = Path("/proc/stat")
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system . . irq softirq steal: not idle, not iowait


def machine_cpu_seconds(stat: Path = PROC_STAT) -> float | None:
    """The CPU seconds all processes of the machine have used since boot: the busy fields of
    /proc/stat's `cpu` line (guest time is inside user), in clock ticks. None where it cannot be read."""
    try:
        first = stat.read_text().split("\n", 1)[0].split()
        ticks = [int(first[1 + k]) for k in BUSY_FIELDS]
    except (OSError, ValueError, IndexError):
        return None
    return sum(ticks) / os.sysconf("SC_CLK_TCK")


PROC = Path("/proc")


def tree_cpu_seconds(root: int, proc: Path = PROC) -> dict[int, float]:
    """CPU seconds (user + system) of `root` and every live descendant, by pid, from /proc."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in proc.glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        except (OSError, IndexError):
            continue  # a process that ended meanwhile
        pid = int(entry.parent.name)
        parents[pid], cpu[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {root}, True
    while grew:
        grown = tree | {pid for pid, parent in parents.items() if parent in tree}
        grew, tree = len(grown) > len(tree), grown
    return {pid: cpu[pid] for pid in tree if pid in cpu}


class TreeWatch:
    """Polls a case's process tree while it runs: the CPU time of processes its parents never reap
    (Spark's Python workers, forked by its daemon) never reaches this process's children's times."""

    def __init__(self, root: int, interval_s: float = 0.5) -> None:
        self.root, self.interval_s = root, interval_s
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while True:
            for pid, seconds in tree_cpu_seconds(self.root).items():
                self.seen[pid] = max(seconds, self.seen.get(pid, 0.0))
            if self.stop.wait(self.interval_s):
                return

    def cpu_s(self) -> float:
        """The tree's CPU seconds as last seen (each process up to its last poll)."""
        self.stop.set()
        self.thread.join()
        return sum(self.seen.values())


def sample_load(stat: Path = PROC_STAT) -> LoadSample:
    """Sample now; a case is measured between two samples (`machine_load`)."""
    times = os.times()
    return LoadSample(os.getloadavg()[0], times.children_user + times.children_system, time.monotonic(),
                      machine_cpu_seconds(stat))


@dataclass(frozen=True)
class MachineLoad:
    """How busy the machine was during one case, so that a slow time on a shared box says why.

    `others`: the cores other processes kept busy on average during the case, measured as the
    machine's CPU time over the case (/proc/stat) less the case's own (its process tree's: the
    reaped children's times, or what `TreeWatch` saw where that is more), over the wall time.
    Judged by what happened during the case, not by the 1-minute load average, which lags and
    reads the job before. Without /proc/stat (`machine_cpu_s` None) it falls back on that load
    average after the case less the cores the case kept busy.
    """

    cpus: int
    cores: int
    load_before: float
    load_after: float
    cpu_s: float
    wall_s: float
    machine_cpu_s: float | None = None  # the whole machine's CPU seconds during the case

    @property
    def own(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def others(self) -> float:
        if self.machine_cpu_s is not None and self.wall_s > 0:
            return max(0.0, (self.machine_cpu_s - self.cpu_s) / self.wall_s)
        return max(0.0, self.load_after - self.own)

    @property
    def busy(self) -> bool:
        """Other work wanted more than the cores the case left free, by half a core or more."""
        return self.others >= max(0, self.cpus - self.cores) + BUSY_MARGIN

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"others": round(self.others, 2), "busy": self.busy}


BUSY_MARGIN = 0.5


def machine_load(before: LoadSample, after: LoadSample, cores: int, cpus: int | None = None,
                 tree_cpu_s: float = 0.0) -> MachineLoad:
    """The load during a case that used `cores` cores, from samples taken before and after it, and
    what a `TreeWatch` saw of its process tree's CPU time (where that is more than the reaped)."""
    machine = (None if before.machine_cpu_s is None or after.machine_cpu_s is None
               else round(after.machine_cpu_s - before.machine_cpu_s, 3))
    return MachineLoad(
        cpus=cpus or os.cpu_count() or 1,
        cores=cores,
        load_before=round(before.load_1m, 2),
        load_after=round(after.load_1m, 2),
        cpu_s=round(max(after.children_cpu_s - before.children_cpu_s, tree_cpu_s), 3),
        wall_s=round(after.monotonic_s - before.monotonic_s, 3),
        machine_cpu_s=machine,
    )
