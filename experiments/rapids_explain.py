"""What spark-rapids ran on the GPU, read from its `spark.rapids.sql.explain=ALL` driver log.

With that setting the plugin logs, for every query it plans, a tree of lines such as
    *Exec <ProjectExec> will run on GPU
    !Exec <SortMergeJoinExec> cannot run on GPU because ExistenceJoin(exists#416) currently is not supported
    @Expression <AttributeReference> c_customer_sk#0 could run on GPU
    !Unsupported operator: <RowDataSourceScanExec> cannot run on GPU because no GPU enabled version ...
`*` marks what was replaced by a GPU version, `!` what stays on the CPU (with the reason) and `@`
what could run on the GPU but depends on its parent. The recommender prints `ALS_PHASE <name>`
markers on stderr, so each line is attributed to the phase whose query produced it. Work that
never becomes a SQL plan (RDD code, MLlib's ALS solver) produces no line at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

PHASE_MARK = re.compile(r"ALS_PHASE (?P<phase>\w+) begin")
LINE = re.compile(
    r"^\s*(?P<mark>[*!@])\s*(?P<kind>[A-Za-z_ ]*?):?\s*<(?P<name>[^>]+)>(?P<rest>.*?)"
    r"(?: (?P<verdict>will run on GPU|could run on GPU|cannot run on GPU)(?: because (?P<reason>.*))?)\s*$"
)
OPERATOR_KINDS = {"Exec", "Unsupported operator", "NOT_FOUND", ""}


@dataclass
class PhaseReport:
    """Operators (Spark plan nodes) of one phase: which ran on the GPU, which stayed on the CPU."""

    on_gpu: dict[str, int] = field(default_factory=dict)
    on_cpu: dict[str, list[str]] = field(default_factory=dict)  # operator -> distinct reasons
    expressions_on_cpu: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"on_gpu": self.on_gpu, "on_cpu": self.on_cpu, "expressions_on_cpu": self.expressions_on_cpu}


def _is_operator(kind: str, name: str) -> bool:
    return kind in OPERATOR_KINDS and (kind != "" or name.endswith("Exec"))


def parse(lines: Iterable[str], first_phase: str = "startup") -> dict[str, PhaseReport]:
    """Per phase, the operators the plugin put on the GPU and those it left on the CPU."""
    reports: dict[str, PhaseReport] = {}
    phase = first_phase
    for line in lines:
        marker = PHASE_MARK.search(line)
        if marker:
            phase = marker.group("phase")
            continue
        match = LINE.match(line)
        if not match:
            continue
        report = reports.setdefault(phase, PhaseReport())
        kind, name = match.group("kind").strip(), match.group("name")
        reason = (match.group("reason") or "").strip()
        if match.group("mark") == "!":
            target = report.on_cpu if _is_operator(kind, name) else report.expressions_on_cpu
            reasons = target.setdefault(name, [])
            if reason and reason not in reasons:
                reasons.append(reason)
        elif match.group("mark") == "*" and _is_operator(kind, name):
            report.on_gpu[name] = report.on_gpu.get(name, 0) + 1
    return reports


def explain_lines(stderr: str) -> list[str]:
    """The phase markers and the plugin's explain lines of a driver log, for keeping with a result."""
    return [line for line in stderr.splitlines() if PHASE_MARK.search(line) or LINE.match(line)]
