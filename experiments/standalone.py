"""A Spark standalone cluster on 127.0.0.1: one master and N workers, from the installed Spark."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from recommender.launch.submit import spark_bin, submit_env


@dataclass(frozen=True)
class ClusterShape:
    workers: int = 2
    cores_per_worker: int = 1
    memory_per_worker: str = "3g"

    @property
    def cores(self) -> int:
        return self.workers * self.cores_per_worker


@dataclass(frozen=True)
class Cluster:
    master_url: str
    ui_url: str
    shape: ClusterShape


class ClusterError(RuntimeError):
    """The cluster did not come up; the message holds the daemons' logs."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive_workers(ui_url: str) -> int:
    """Workers the master reports ALIVE (its web UI's /json endpoint); 0 when it is not up yet."""
    try:
        with urllib.request.urlopen(f"{ui_url}/json/", timeout=2) as response:
            state = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return 0
    return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")


@contextmanager
def standalone_cluster(shape: ClusterShape = ClusterShape(), timeout_s: float = 90.0) -> Iterator[Cluster]:
    """Start a master and `shape.workers` workers, wait until all are alive, stop them on exit."""
    work = Path(tempfile.mkdtemp(prefix="als-standalone-"))
    port, ui_port = free_port(), free_port()
    master_url, ui_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    env = submit_env() | {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(work / "logs")}
    spark_class = str(spark_bin() / "spark-class")
    daemons: list[tuple[str, subprocess.Popen[bytes]]] = []

    def launch(name: str, args: list[str]) -> None:
        log = (work / f"{name}.log").open("wb")
        proc = subprocess.Popen([spark_class, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        daemons.append((name, proc))

    try:
        launch("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                          "--port", str(port), "--webui-port", str(ui_port)])
        for i in range(shape.workers):
            launch(f"worker-{i}", [
                "org.apache.spark.deploy.worker.Worker", master_url, "--host", "127.0.0.1",
                "--cores", str(shape.cores_per_worker), "--memory", shape.memory_per_worker,
                "--webui-port", str(free_port()), "--work-dir", str(work / f"worker-{i}"),
            ])
        deadline = time.monotonic() + timeout_s
        while alive_workers(ui_url) < shape.workers:
            dead = [name for name, proc in daemons if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"not ready after {timeout_s:.0f} s"
                raise ClusterError(f"standalone cluster {master_url}: {why}\n{_logs(work)}")
            time.sleep(0.5)
        yield Cluster(master_url, ui_url, shape)
    finally:
        for _, proc in reversed(daemons):
            _stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a daemon and the JVM that spark-class started under it."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def _logs(work: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                     for log in sorted(work.glob("*.log")))
