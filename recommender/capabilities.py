"""What this machine can run, checked once each: the one place tests, the grid and the CLI ask.

Each check answers with None when the thing is there, or with the reason it is not, so that a
skipped test or case says why.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from functools import cache

from recommender.launch.registry import Implementation, Need

MIN_JAVA = 17  # Spark 4
RAPIDS_JAR_ENV = "SPARK_RAPIDS_JAR"


@cache
def java_major() -> int | None:
    """The major version of the `java` on PATH, or None without one."""
    if shutil.which("java") is None:
        return None
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    try:
        version = out.split('"')[1]
    except IndexError:
        return None
    major = version.split(".")[0]
    return int(major) if major.isdigit() else None


@cache
def no_jvm() -> str | None:
    major = java_major()
    if major is None:
        return "no java on PATH"
    return None if major >= MIN_JAVA else f"Spark 4 needs Java {MIN_JAVA}+, found {major}"


@cache
def no_jdk() -> str | None:
    return no_jvm() or (None if shutil.which("javac") else "no javac: the Scala/Java build needs a JDK")


@cache
def no_torch() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "PyTorch engines need torch: pip install -r requirements-torch.txt"
    return None


def _no_peer(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"the {module} library is not installed: pip install -r requirements-peers.txt"
    return None


@cache
def no_implicit() -> str | None:
    return _no_peer("implicit")


@cache
def no_lenskit() -> str | None:
    return _no_peer("lenskit")


@cache
def no_cuda() -> str | None:
    """Why torch cannot run on a CUDA device here, or None."""
    if no_torch():
        return no_torch()
    import torch

    return None if torch.cuda.is_available() else "torch sees no CUDA device on this machine"


@cache
def nvidia_gpus() -> tuple[str, ...]:
    """The NVIDIA GPUs that nvidia-smi sees, as 'name, memory' strings."""
    if shutil.which("nvidia-smi") is None:
        return ()
    proc = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                          capture_output=True, text=True)
    return tuple(line.strip() for line in proc.stdout.splitlines() if line.strip()) if proc.returncode == 0 else ()


def no_gpu() -> str | None:
    """Why no NVIDIA GPU is usable here (neither nvidia-smi nor torch sees one), or None."""
    if nvidia_gpus() or not no_cuda():
        return None
    return "no NVIDIA GPU on this machine (nvidia-smi and torch see none)"


def rapids_jar(given: str | None = None) -> str | None:
    """The spark-rapids jar: the one given, else $SPARK_RAPIDS_JAR."""
    return given or os.environ.get(RAPIDS_JAR_ENV) or None


def no_rapids(given: str | None = None) -> str | None:
    if not rapids_jar(given):
        return f"no spark-rapids jar given (--rapids-jar or ${RAPIDS_JAR_ENV})"
    return None if nvidia_gpus() else "nvidia-smi sees no GPU on this machine"


CHECKS: dict[Need, Callable[[], str | None]] = {
    Need.JVM: no_jvm, Need.JDK: no_jdk, Need.TORCH: no_torch, Need.IMPLICIT: no_implicit, Need.LENSKIT: no_lenskit,
}


def missing(impl: Implementation, gpu: bool = False, rapids: str | None = None) -> str | None:
    """Why `impl` cannot run here (on the GPU, when `gpu`), or None when it can."""
    for need in sorted(impl.needs, key=lambda n: n.value):
        reason = CHECKS[need]()
        if reason:
            return f"{impl.name}: {reason}"
    if gpu:
        reason = no_cuda() if impl.own_gpu_solver else no_rapids(rapids)
        return f"{impl.name} on GPU: {reason}" if reason else None
    return None


# The pytest markers that need something of the machine, and the check that says whether it is there.
MARKER_CHECKS: dict[str, Callable[[], str | None]] = {
    "spark": no_jvm,
    "scala": no_jdk,
    "torch": no_torch,
    "gpu": no_gpu,
    "cuda": no_cuda,
    "implicit": no_implicit,
    "lenskit": no_lenskit,
}
