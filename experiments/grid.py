"""The experiments of `grid.toml` expanded into benchmark cases."""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from recommender.launch import registry
from recommender.params import ALSParams, param_fields

GRID_FILE = Path(__file__).resolve().parent / "grid.toml"
AXES = ("impls", "apis", "devices", "cores", "data")
SWEEP = "params"  # an experiment's (or a grid's narrowing of it) lists of ALSParams values
PARAM_TYPES = {f.name: (f.metadata["type"], f.metadata["choices"]) for f in param_fields()}
Swept = tuple[tuple[str, Any], ...]  # (field, value) pairs in ALSParams' field order


class GridError(ValueError):
    """A grid file or a grid selection that cannot be expanded."""


@dataclass(frozen=True, order=True)
class Case:
    """One benchmark case: an implementation and API on a device, a number of cores, a data set, and
    the ALS parameters its experiment sweeps (`swept`, over the grid's own)."""

    data: str
    device: str
    impl: str
    api: str
    cores: int
    skip: str | None = field(default=None, compare=False)  # why the case is over its experiment's budget
    swept: Swept = ()

    @property
    def id(self) -> str:
        """IMPL-API-DEVICE-Nc-DATA, then `,KEY=VALUE` for each swept parameter."""
        return f"{self.impl}-{self.api}-{self.device}-{self.cores}c-{self.data}" + "".join(
            f",{key}={format_value(value)}" for key, value in self.swept)

    @property
    def variant(self) -> str:
        """The swept values, `rank=10 implicit=true`; empty for a case that sweeps none."""
        return variant(dict(self.swept))

    def als_params(self, base: ALSParams) -> ALSParams:
        """The parameters the case runs with: `base` (the grid's) with its swept values over them."""
        return replace(base, **dict(self.swept)) if self.swept else base

    @classmethod
    def parse(cls, case_id: str) -> Case:
        """The case whose `id` is `case_id`."""
        swept: list[tuple[str, Any]] = []
        head, sep, tail = case_id.rpartition(",")
        while sep and tail.partition("=")[0] in PARAM_TYPES and "=" in tail:  # `,KEY=VALUE` from the end
            key, _, text = tail.partition("=")
            try:
                swept.insert(0, (key, parse_value(key, text)))
            except ValueError as error:
                raise GridError(f"{case_id!r}: {error}") from None
            case_id = head
            head, sep, tail = case_id.rpartition(",")
        for impl in sorted(registry.NAMES, key=len, reverse=True):
            if case_id.startswith(f"{impl}-"):
                api, device, cores, data = case_id[len(impl) + 1 :].split("-", 3)
                if cores.endswith("c") and cores[:-1].isdigit():
                    return cls(data, device, impl, api, int(cores[:-1]), swept=tuple(swept))
        raise GridError(f"{case_id!r} is not a case id (IMPL-API-DEVICE-Nc-DATA[,KEY=VALUE...])")


def format_value(value: object) -> str:
    """A parameter's value as ids and reports write it: TOML's `true`/`false`, else Python's."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def variant(swept: Mapping[str, Any]) -> str:
    """Swept values as the report shows them: `rank=10 implicit=true` (ALSParams' field order)."""
    return " ".join(f"{key}={format_value(swept[key])}" for key in PARAM_TYPES if key in swept)


def check_value(key: str, value: object) -> Any:
    """`value` as the ALSParams field `key` takes it (an int for a float field becomes a float), or a
    ValueError naming the key."""
    if key not in PARAM_TYPES:
        raise ValueError(f"unknown key {key!r}")
    kind, choices = PARAM_TYPES[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ValueError(f"{key} must be {kind.__name__}, not {value!r}")
    if choices and value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return value


def parse_value(key: str, text: str) -> Any:
    """A parameter's value from its text in a case id or on the command line (`true`, `64`, `0.2`, `cg`)."""
    if key not in PARAM_TYPES:
        raise ValueError(f"unknown parameter {key!r}; known: {', '.join(PARAM_TYPES)}")
    kind = PARAM_TYPES[key][0]
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{key} must be true or false, not {text!r}")
        return text.lower() == "true"
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{key} must be {kind.__name__}, not {text!r}") from None
    return check_value(key, value)


def parse_param_option(text: str) -> tuple[str, list[Any]]:
    """`KEY=V1,V2` (the `--param` option) as the key and its typed values."""
    key, sep, values = text.partition("=")
    if not sep or not values.strip():
        raise ValueError(f"{text!r}: expected KEY=VALUE[,VALUE...], e.g. rank=10,64")
    return key.strip(), [parse_value(key.strip(), v.strip()) for v in values.split(",") if v.strip()]


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
class Budget:
    """The largest input an IMPL-API case of an experiment takes, and why."""

    ratings: int
    reason: str


@dataclass(frozen=True)
class Memory:
    """The memory one machine must have to run a grid (its `memory`), and why."""

    gib: float
    reason: str


@dataclass(frozen=True)
class Grid:
    name: str
    description: str
    rounds: int
    experiments: dict[str, dict[str, list[Any]]]  # experiment name -> its axes, narrowed
    params: ALSParams  # the file's [params], with the grid's own `params` over them
    top_k: int = 0  # the recommend phase's k for the cases that have one (`top_k` in the grid's section)
    include_rated: bool = False  # the grid's `include_rated`: lists may hold the user's training items
    cluster_only: bool = False  # `cluster_only`: too large for one machine (EMR or a --spark-master cluster)
    memory: Memory | None = None  # `memory = { gib, reason }`: refused on a machine with less
    sweeps: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # experiment -> field -> values


@dataclass(frozen=True)
class Catalogue:
    """Everything in a grid file."""

    params: ALSParams
    experiments: dict[str, dict[str, list[Any]]]
    descriptions: dict[str, str]
    grids: dict[str, Grid]
    devices: dict[str, Device]
    budgets: dict[str, dict[str, Budget]] = field(default_factory=dict)  # experiment -> "impl-api" -> budget
    sweeps: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # experiment -> field -> values

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
    params: Mapping[str, Sequence[object]] | None = None  # ALSParams field -> the values to keep (`--param`)

    def axis(self, name: str) -> Sequence[object] | None:
        return getattr(self, name)


def load(path: Path = GRID_FILE) -> Catalogue:
    """Parse and check a grid file."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{path}: {error}") from None

    def unknown_keys(where: str, given: dict[str, Any]) -> None:
        unknown = set(given) - set(PARAM_TYPES)
        if unknown:
            raise GridError(f"{path}: {where} has unknown keys {sorted(unknown)}")

    def params_of(where: str, given: dict[str, Any], base: ALSParams) -> ALSParams:
        unknown_keys(where, given)
        try:
            return replace(base, **{key: check_value(key, value) for key, value in given.items()})
        except ValueError as error:  # a wrong type, or a value ALSParams refuses
            raise GridError(f"{path}: {where}: {error}") from None

    def sweep_of(where: str, given: Any, base: ALSParams) -> dict[str, list[Any]]:
        """An experiment's `params`: a non-empty list of values per field, each valid over `base`."""
        if not isinstance(given, dict):
            raise GridError(f"{path}: {where} must be a table of lists, e.g. {{ rank = [10, 64] }}")
        unknown_keys(where, given)
        sweep = {}
        for key, values in given.items():
            if not isinstance(values, list) or not values:
                raise GridError(f"{path}: {where}: {key} must be a non-empty list of values, not {values!r}")
            sweep[key] = [getattr(params_of(where, {key: value}, base), key) for value in values]
        return sweep

    base = params_of("[params]", raw.get("params", {}), ALSParams())
    experiments, descriptions, budgets, sweeps = {}, {}, {}, {}
    for name, body in raw.get("experiments", {}).items():
        missing = [axis for axis in AXES if axis not in body]
        if missing:
            raise GridError(f"{path}: experiment {name!r} lacks {missing}")
        experiments[name] = {axis: list(body[axis]) for axis in AXES}
        descriptions[name] = body.get("description", "")
        budgets[name] = {key: Budget(int(limit["ratings"]), str(limit["reason"]))
                         for key, limit in body.get("max_ratings", {}).items()}
        sweeps[name] = sweep_of(f"experiment {name!r} {SWEEP}", body.get(SWEEP, {}), base)
    devices = {
        name: Device(name, body.get("description", ""), dict(body.get("confs", {})),
                     body.get("task_gpu_amount"))
        for name, body in raw.get("devices", {}).items()
    }
    grids = {}
    for name, body in raw.get("grids", {}).items():
        chosen, swept = {}, {}
        for exp, narrowing in body.get("experiments", {}).items():
            if exp not in experiments:
                raise GridError(f"{path}: grid {name!r} names unknown experiment {exp!r}")
            bad = set(narrowing) - {*AXES, SWEEP}
            if bad:
                raise GridError(f"{path}: grid {name!r} narrows unknown axes {sorted(bad)}")
            chosen[exp] = experiments[exp] | {k: list(v) for k, v in narrowing.items() if k != SWEEP}
            swept[exp] = sweeps[exp] | sweep_of(f"grid {name!r} experiment {exp!r} {SWEEP}",
                                                narrowing.get(SWEEP, {}), base)
        own = params_of(f"grid {name!r} params", body.get("params", {}), base)
        top_k = body.get("top_k", 0)
        if not isinstance(top_k, int) or top_k < 0:
            raise GridError(f"{path}: grid {name!r} top_k must be a whole number at least 0, not {top_k!r}")
        memory = body.get("memory")
        if memory is not None and (not isinstance(memory, dict) or set(memory) != {"gib", "reason"}):
            raise GridError(f"{path}: grid {name!r} memory must be {{ gib = N, reason = \"...\" }}, not {memory!r}")
        grids[name] = Grid(name, body.get("description", ""), int(body.get("rounds", 1)), chosen, own, top_k,
                           bool(body.get("include_rated", False)), bool(body.get("cluster_only", False)),
                           None if memory is None else Memory(float(memory["gib"]), str(memory["reason"])), swept)
    return Catalogue(base, experiments, descriptions, grids, devices, budgets, sweeps)


def combinations(sweep: Mapping[str, Sequence[Any]]) -> list[Swept]:
    """Every combination of a sweep's values, each as (field, value) pairs in ALSParams' field order."""
    keys = [key for key in PARAM_TYPES if key in sweep]
    return [tuple(zip(keys, values, strict=True)) for values in itertools.product(*(sweep[k] for k in keys))]


def expand(
    catalogue: Catalogue,
    grid: Grid,
    max_cores: int,
    selection: Selection | None = None,
    resolve_data: Callable[[str], str] = str,
    data_size: Callable[[str], int | None] | None = None,
) -> list[Case]:
    """The grid's distinct cases, narrowed by `selection`, with cores capped at `max_cores`.

    `resolve_data` maps a data set name to the one that will run (a real MovieLens set or its
    synthetic shape). With `data_size` (e.g. `expected_ratings`), a case whose data is larger than
    its experiment's budget for its IMPL-API carries the budget's reason in `skip`, unless another
    experiment runs it within budget. A case whose solver or objective (its swept or the grid's) its
    implementation lacks carries that reason (`registry.lacks`). With `selection.params`, only cases whose
    parameters (the grid's, with
    the swept values over them) have the given values are kept. Cases of two experiments that run the
    same parameters are one case, named as the first.
    """
    selection = selection or Selection()
    cases: dict[tuple[Case, ALSParams], tuple[Case, str | None]] = {}
    for experiment, axes in grid.experiments.items():
        budgets = catalogue.budgets.get(experiment, {})
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
        runs = [(swept, replace(grid.params, **dict(swept))) for swept in combinations(grid.sweeps.get(experiment, {}))]
        if selection.params is not None:
            runs = [(swept, params) for swept, params in runs
                    if all(getattr(params, key) in kept for key, kept in selection.params.items())]
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
                        for data, (swept, params) in itertools.product(values["data"], runs):
                            case = Case(resolve_data(str(data)), device, impl, api, n, swept=swept)
                            budget = budgets.get(f"{impl}-{api}") if data_size else None
                            skip = registry.lacks(registry.BY_NAME[impl], params) or (
                                over_budget(budget, case.data, data_size) if data_size else None)
                            key = (replace(case, swept=()), params)
                            first, before = cases.get(key, (case, skip))
                            cases[key] = (first, skip if before else None)
    return sorted((replace(case, skip=skip) for case, skip in cases.values()), key=_case_order)


def over_budget(budget: Budget | None, data: str, size: Callable[[str], int | None]) -> str | None:
    """The budget's reason, with the sizes, when `data` is larger than `budget`; else None."""
    if budget is None:
        return None
    ratings = size(data)
    if ratings is None or ratings <= budget.ratings:
        return None
    return f"{budget.reason} ({ratings:,} > {budget.ratings:,} ratings)"


def expected_ratings(name: str) -> int | None:
    """A data set's size before it is made: MovieLens' published counts (the synthetic shapes have
    the same), an expansion's expectation from its base; None for a file."""
    from recommender.data.fractal import FRACTAL
    from recommender.data.movielens import SETS
    from recommender.data.sources import SYNTHETIC, expected_fractal_ratings, parse_synthetic

    if name.startswith(FRACTAL):
        return expected_fractal_ratings(name)
    shape = parse_synthetic(name)[0] if name.startswith(SYNTHETIC) else name
    return SETS[shape].ratings if shape in SETS else None


def resolve_data(name: str) -> str:
    """A MovieLens set that is neither mirrored nor cached runs as its synthetic shape; so does the
    base of an expansion (`fractal:ml-20m:16x32` without ml-20m expands `synthetic:ml-20m`) or of a
    view (`positives:4:ml-20m` runs as `positives:4:synthetic:ml-20m`)."""
    from recommender.data.fractal import FRACTAL, parse_fractal
    from recommender.data.movielens import SETS
    from recommender.data.sources import stored_locally
    from recommender.data.views import is_view, parse_positives

    if is_view(name):
        view = parse_positives(name)
        base = resolve_data(view.base)
        return name if base == view.base else view.with_base(base).name
    if name.startswith(FRACTAL):
        spec = parse_fractal(name)
        base = resolve_data(spec.base)
        return name if base == spec.base else replace(spec, base=base).name
    if name in SETS and not stored_locally(name):
        return f"synthetic:{name}"
    return name


IMPL_ORDER = {impl: n for n, impl in enumerate(registry.NAMES)}


def _case_order(case: Case) -> tuple[object, ...]:
    return (case.device, case.data, IMPL_ORDER.get(case.impl, 9), case.impl, case.api, case.cores, case.swept)
