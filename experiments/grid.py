"""The experiments of `grid.toml` expanded into benchmark cases."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from recommender.launch import registry
from recommender.params import ALSParams

GRID_FILE = Path(__file__).resolve().parent / "grid.toml"
AXES = ("impls", "apis", "devices", "cores", "data")


class GridError(ValueError):
    """A grid file or a grid selection that cannot be expanded."""


@dataclass(frozen=True, order=True)
class Case:
    """One benchmark case: an implementation and API on a device, a number of cores, a data set."""

    data: str
    device: str
    impl: str
    api: str
    cores: int

    @property
    def id(self) -> str:
        return f"{self.impl}-{self.api}-{self.device}-{self.cores}c-{self.data}"

    @classmethod
    def parse(cls, case_id: str) -> Case:
        """The case whose `id` is `case_id`."""
        for impl in sorted(registry.NAMES, key=len, reverse=True):
            if case_id.startswith(f"{impl}-"):
                api, device, cores, data = case_id[len(impl) + 1 :].split("-", 3)
                if cores.endswith("c") and cores[:-1].isdigit():
                    return cls(data, device, impl, api, int(cores[:-1]))
        raise GridError(f"{case_id!r} is not a case id (IMPL-API-DEVICE-Nc-DATA)")


@dataclass(frozen=True)
class Device:
    """A device profile: the Spark confs it adds and the share of a GPU each task takes."""

    name: str
    description: str
    confs: dict[str, str] = field(default_factory=dict)
    task_gpu_amount: str | None = None  # "1/cores" or a number

    @property
    def uses_gpu(self) -> bool:
        return self.task_gpu_amount is not None

    def confs_for(self, cores: int, local: bool = False) -> dict[str, str]:
        """The profile's confs for `cores` task slots sharing the GPU.

        In local mode Spark schedules no GPU resources (asking for them hangs the application,
        as spark-rapids' maintainers note), so the resource amounts are left out there.
        """
        if self.task_gpu_amount is None:
            return dict(self.confs)
        if local:
            return {k: v for k, v in self.confs.items() if ".resource." not in k}
        amount = 1 / cores if self.task_gpu_amount == "1/cores" else float(self.task_gpu_amount)
        return self.confs | {"spark.task.resource.gpu.amount": f"{amount:.6g}"}


@dataclass(frozen=True)
class Grid:
    name: str
    description: str
    rounds: int
    experiments: dict[str, dict[str, list[Any]]]  # experiment name -> its axes, narrowed
    params: ALSParams  # the file's [params], with the grid's own `params` over them


@dataclass(frozen=True)
class Catalogue:
    """Everything in a grid file."""

    params: ALSParams
    experiments: dict[str, dict[str, list[Any]]]
    descriptions: dict[str, str]
    grids: dict[str, Grid]
    devices: dict[str, Device]

    def grid(self, name: str) -> Grid:
        if name not in self.grids:
            raise GridError(f"unknown grid {name!r}; {GRID_FILE.name} defines {', '.join(self.grids)}")
        return self.grids[name]


@dataclass(frozen=True)
class Selection:
    """Narrowing from the command line; None keeps the grid's own list."""

    impls: Sequence[str] | None = None
    apis: Sequence[str] | None = None
    devices: Sequence[str] | None = None
    cores: Sequence[int] | None = None
    data: Sequence[str] | None = None

    def axis(self, name: str) -> Sequence[object] | None:
        return getattr(self, name)


def load(path: Path = GRID_FILE) -> Catalogue:
    """Parse and check a grid file."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{path}: {error}") from None
    known_params = {f.name for f in fields(ALSParams)}

    def params_of(where: str, given: dict[str, Any], base: ALSParams) -> ALSParams:
        unknown = set(given) - known_params
        if unknown:
            raise GridError(f"{path}: {where} has unknown keys {sorted(unknown)}")
        return replace(base, **given)

    base = params_of("[params]", raw.get("params", {}), ALSParams())
    experiments, descriptions = {}, {}
    for name, body in raw.get("experiments", {}).items():
        missing = [axis for axis in AXES if axis not in body]
        if missing:
            raise GridError(f"{path}: experiment {name!r} lacks {missing}")
        experiments[name] = {axis: list(body[axis]) for axis in AXES}
        descriptions[name] = body.get("description", "")
    devices = {
        name: Device(name, body.get("description", ""), dict(body.get("confs", {})),
                     body.get("task_gpu_amount"))
        for name, body in raw.get("devices", {}).items()
    }
    grids = {}
    for name, body in raw.get("grids", {}).items():
        chosen = {}
        for exp, narrowing in body.get("experiments", {}).items():
            if exp not in experiments:
                raise GridError(f"{path}: grid {name!r} names unknown experiment {exp!r}")
            bad = set(narrowing) - set(AXES)
            if bad:
                raise GridError(f"{path}: grid {name!r} narrows unknown axes {sorted(bad)}")
            chosen[exp] = experiments[exp] | {k: list(v) for k, v in narrowing.items()}
        own = params_of(f"grid {name!r} params", body.get("params", {}), base)
        grids[name] = Grid(name, body.get("description", ""), int(body.get("rounds", 1)), chosen, own)
    return Catalogue(base, experiments, descriptions, grids, devices)


def expand(
    catalogue: Catalogue,
    grid: Grid,
    max_cores: int,
    selection: Selection = Selection(),
    resolve_data: Callable[[str], str] = str,
) -> list[Case]:
    """The grid's distinct cases, narrowed by `selection`, with cores capped at `max_cores`.

    `resolve_data` maps a data set name to the one that will run (a real MovieLens set or its
    synthetic shape).
    """
    cases: set[Case] = set()
    for axes in grid.experiments.values():
        values = {}
        for axis in AXES:
            chosen = axes[axis]
            narrowed = selection.axis(axis)
            if narrowed is not None:
                chosen = [v for v in chosen if v in narrowed or (axis == "cores" and v == "all")]
            values[axis] = chosen
        for device in values["devices"]:
            if device not in catalogue.devices:
                raise GridError(f"unknown device {device!r}; known: {', '.join(catalogue.devices)}")
        cores = sorted({max_cores if c == "all" else int(c) for c in values["cores"]})
        if selection.cores is not None:
            cores = [c for c in cores if c in selection.cores]
        for impl in values["impls"]:
            if impl not in registry.BY_NAME:
                raise GridError(f"unknown implementation {impl!r}; known: {', '.join(registry.NAMES)}")
            for api in values["apis"]:
                if api not in registry.BY_NAME[impl].apis:
                    continue
                for device in values["devices"]:
                    for n in cores:
                        if n > max_cores:
                            continue
                        for data in values["data"]:
                            cases.add(Case(resolve_data(str(data)), device, impl, api, n))
    return sorted(cases, key=_case_order)


def resolve_data(name: str) -> str:
    """A MovieLens set that is neither mirrored nor cached runs as its synthetic shape."""
    from recommender.data.movielens import SETS
    from recommender.data.sources import stored_locally

    if name in SETS and not stored_locally(name):
        return f"synthetic:{name}"
    return name


IMPL_ORDER = {impl: n for n, impl in enumerate(registry.NAMES)}


def _case_order(case: Case) -> tuple[object, ...]:
    return (case.device, case.data, IMPL_ORDER.get(case.impl, 9), case.impl, case.api, case.cores)
