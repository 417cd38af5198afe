"""What a benchmark ran on: Java, Spark and Scala versions, CPU and GPU models, the master."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
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
