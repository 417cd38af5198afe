"""What each barrier task of torch-spark measured (its memory and its steps' seconds), and the stage's
figures for the result's `resources`: the memory readings come from /proc, in the task's own Python worker."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from recommender import memory


@dataclass(frozen=True)
class TaskFigures:
    """What one barrier task held, its memory and how long its steps took (seconds)."""

    task: int  # its partition, the rank in the process group
    stage: int  # the Spark stage id, to look its attempts up
    rows: int  # ratings this task received: its user block, item block and holdout
    held_bytes: int  # those rows unpacked: int32 user and item, float32 rating
    tensor_bytes: int  # the blocks and factor matrices it kept as torch tensors
    start_rss_bytes: int  # resident memory of its Python worker once torch is imported, before the data
    peak_rss_bytes: int  # peak resident memory of its Python worker process during the task
    peak_device_bytes: int  # peak CUDA memory, 0 on the CPU
    import_s: float  # torch and this package: what is left of `warm_up`'s import when the task starts
    read_s: float  # shuffle read and the chunks to numpy (the process group's rendezvous runs meanwhile)
    meet_s: float  # the rendezvous left after the read, and the read counts' sum: waits for the slowest reader
    setup_s: float  # id exchange, indexing and CSR blocks
    fit_s: float
    predict_s: float  # the predictions and their errors, a chunk at a time (never all at once)
    evaluate_s: float  # the errors' sums and counts all-reduced, and the ranking metrics
    recommend_s: float


@dataclass(frozen=True)
class StageFigures:
    """The barrier stage as a whole, for the result's `resources`."""

    tasks: tuple[TaskFigures, ...]
    attempt: int  # the stage attempt that succeeded: > 0 after Spark retried the stage
    stage_s: float  # the driver's wait for the job: read, route, shuffle, launch and the barrier stage

    def solve_seconds(self) -> dict[str, float]:
        """The phases the tasks time once they hold their ratings, each the slowest task's."""
        def slowest(step: Callable[[TaskFigures], float]) -> float:
            return max(step(task) for task in self.tasks)

        return {"fit": slowest(lambda t: t.setup_s + t.fit_s), "predict": slowest(lambda t: t.predict_s),
                "evaluate": slowest(lambda t: t.evaluate_s), "recommend": slowest(lambda t: t.recommend_s)}

    def extra_info(self) -> dict[str, float | int]:
        """Per-executor memory (peak RSS absolute, and above the worker's RSS after imports, against
        the ratings' bytes held) and where the stage's load time went (the slowest task's steps)."""
        def slowest(name: str) -> float:
            return round(max(getattr(task, name) for task in self.tasks), 4)

        above = [t.peak_rss_bytes - t.start_rss_bytes for t in self.tasks]
        return {
            "tasks": len(self.tasks),
            "stage_attempt": self.attempt,
            memory.TASK_PEAK_RSS: max(t.peak_rss_bytes for t in self.tasks),
            "peak_rss_above_start_bytes_max": max(above),
            "start_rss_bytes_max": max(t.start_rss_bytes for t in self.tasks),
            memory.TASK_PEAK_DEVICE: max(t.peak_device_bytes for t in self.tasks),
            "held_bytes_max": max(t.held_bytes for t in self.tasks),
            "tensor_bytes_max": max(t.tensor_bytes for t in self.tasks),
            "peak_rss_per_held_byte": round(max(t.peak_rss_bytes / max(t.held_bytes, 1) for t in self.tasks), 3),
            "rss_growth_per_held_byte": round(max(a / max(t.held_bytes, 1) for a, t in zip(above, self.tasks,
                                                                                           strict=True)), 3),
            "stage_load_s": round(self.stage_s - sum(self.solve_seconds().values()), 4),
            "task_import_s": slowest("import_s"),
            "task_read_s": slowest("read_s"),
            "task_meet_s": slowest("meet_s"),
            "task_setup_s": slowest("setup_s"),
            "task_fit_s": slowest("fit_s"),
        }


def rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def restart_peak_rss() -> None:
    """Restart this process's resident high-water mark from now (Linux's clear_refs "5"), so that a
    Python worker Spark reuses reports the task's own peak, not the routing pass's before it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:  # not Linux, or not allowed: the peak is then the worker's whole life's
        pass


def peak_rss(start: int) -> int:
    """This process's resident high-water mark since `restart_peak_rss`, in bytes: VmHWM, or the
    resident size `start` measured at the restart where larger, for the kernel raises VmHWM lazily
    (when pages are unmapped, not when malloc hands them back with madvise), so both are floors."""
    return max(memory.peak_rss_bytes() or 0, start)
