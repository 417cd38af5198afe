"""torch.distributed among the tasks of one Spark barrier stage: rendezvous, then row exchanges.

Spark launches the tasks together; the barrier context's `allGather` tells everyone the address
that task 0 listens on, and torch.distributed (gloo on CPU, NCCL where each task has its own
GPU) carries every exchange after that. Each collective has a timeout, so a task waiting on a
peer that died gets an error rather than waiting for ever.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from pyspark import BarrierTaskContext

TIMEOUT = timedelta(minutes=5)  # the longest one task may wait for its peers at one collective
T = TypeVar("T")
PEER_GRACE_S = 10.0  # how long a task whose collective failed waits before reporting it (see `_collective`)


@dataclass(frozen=True)
class Group:
    """This task's place in the stage's process group, and where exchanged tensors must live."""

    rank: int
    world: int
    comm: torch.device  # the device collectives run on: the task's GPU with NCCL, else the CPU


def _free_port(host: str) -> int:
    """A TCP port nobody listens on at `host` now (task 0's rendezvous port)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _join(context: BarrierTaskContext, device: torch.device) -> Group:
    """Join the stage's default process group. NCCL needs a GPU per task; tasks that share one
    (local mode) or run on the CPU use gloo."""
    infos = context.getTaskInfos()
    rank, world = context.partitionId(), len(infos)
    host = infos[rank].address.rsplit(":", 1)[0]
    mine = {"device": f"{host}/{device}", "address": f"{host}:{_free_port(host)}" if rank == 0 else ""}
    everyone = [json.loads(message) for message in context.allGather(json.dumps(mine))]
    devices = [peer["device"] for peer in everyone]
    nccl = device.type == "cuda" and len(set(devices)) == world
    dist.init_process_group("nccl" if nccl else "gloo", init_method=f"tcp://{everyone[0]['address']}",
                            world_size=world, rank=rank, timeout=TIMEOUT)
    return Group(rank, world, device if nccl else torch.device("cpu"))


@contextmanager
def process_group(context: BarrierTaskContext, device: torch.device, meanwhile: Callable[[], T]
                  ) -> Iterator[tuple[Group, T]]:
    """Join the stage's default process group while `meanwhile` (the task's shuffle read) runs, and
    leave it after the body of the `with`. The join runs in a thread, for it is mostly waiting: the
    barrier's allGather polls once a second, and the gloo connect takes about half a second more."""
    with ThreadPoolExecutor(1, thread_name_prefix="rendezvous") as pool:
        joining = pool.submit(_join, context, device)
        try:
            done = meanwhile()
        except BaseException:
            if joining.exception() is None:  # waits for the join, then leaves: Spark may reuse this worker
                dist.destroy_process_group()
            raise
        group = joining.result()  # the join's error, if it failed
    try:
        yield group, done
    finally:
        dist.destroy_process_group()


@contextmanager
def _collective(group: Group) -> Iterator[None]:
    """A collective that fails because a peer failed (connection reset, timeout) is the peer's
    error, not this task's: wait a little before reporting, so the peer's error reaches Spark
    first and names the real cause; Spark then kills this task (and retries the stage)."""
    try:
        yield
    except RuntimeError as error:
        time.sleep(PEER_GRACE_S)
        raise RuntimeError(f"task {group.rank}: a collective failed, likely because another task failed "
                           f"(its error is the cause to look for): {error}") from error


def gather_rows(group: Group, tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every task's `tensor` (any number of rows, the same columns and dtype), in rank order."""
    size = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=group.comm)
    sizes = [torch.empty_like(size) for _ in range(group.world)]
    with _collective(group):
        dist.all_gather(sizes, size)
    counts = [int(n) for n in sizes]
    padded = torch.zeros((max(counts), *tensor.shape[1:]), dtype=tensor.dtype, device=group.comm)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(group.world)]
    with _collective(group):
        dist.all_gather(parts, padded)
    return [part[:n] for part, n in zip(parts, counts, strict=True)]


@dataclass(frozen=True)
class Layout:
    """Which rows of a full factor matrix each task solves, to assemble the matrix every half-iteration."""

    owned: list[torch.Tensor]  # per rank, the global row indices it solves (on the solve device)
    rows: int

    def assemble(self, group: Group, solved: torch.Tensor) -> torch.Tensor:
        """The full matrix from every task's `solved` rows (this task's are `owned[rank]`), on `solved`'s device."""
        full = torch.empty((self.rows, solved.shape[1]), dtype=solved.dtype, device=solved.device)
        for owned, part in zip(self.owned, gather_rows(group, solved), strict=True):
            full[owned] = part.to(solved.device)
        return full


def all_sum(group: Group, values: list[float]) -> list[float]:
    """The element-wise sum over all tasks, in double precision."""
    return [float(v) for v in sum_tensor(group, torch.tensor(values, dtype=torch.float64))]


def sum_tensor(group: Group, tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of every task's `tensor` (the same shape everywhere), on the CPU."""
    on_comm = tensor.to(group.comm)
    with _collective(group):
        dist.all_reduce(on_comm)
    return on_comm.cpu()
