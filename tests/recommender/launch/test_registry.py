"""The registry is the only list of implementations: the CLI, the entry script and the grid read it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT
from experiments import grid
from recommender import cli, entry
from recommender.launch import registry
from recommender.launch.registry import Launcher
from recommender.params import IMPLICIT_DEFAULTS, ALSParams, flag, param_fields

pytestmark = pytest.mark.unit


def run_help() -> str:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["run"].format_help()  # type: ignore[attr-defined,no-any-return]


def test_every_implementation_is_in_the_cli_help_and_choices() -> None:
    text = " ".join(run_help().split())
    for impl in registry.IMPLEMENTATIONS:
        assert f"{impl.name}: {impl.description}" in text
    assert "{" + ",".join(registry.NAMES) + "}" in text.replace(" ", "")


def test_the_entry_script_takes_every_in_process_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        entry.main(["--help"])
    text = capsys.readouterr().out
    in_process = [impl.name for impl in registry.IMPLEMENTATIONS if impl.launcher is not Launcher.JVM]
    assert "{" + ",".join(in_process) + "}" in text


def test_every_implementation_and_api_expands_in_some_grid() -> None:
    catalogue = grid.load()
    expanded = {(c.impl, c.api) for g in catalogue.grids.values() for c in grid.expand(catalogue, g, max_cores=8)}
    assert expanded == {(impl.name, api) for impl in registry.IMPLEMENTATIONS for api in impl.apis}


def test_every_parameter_is_a_flag_and_round_trips() -> None:
    params = ALSParams(rank=3, iterations=4, reg=0.25, seed=9, blocks=5, holdout=0.125, implicit=True, alpha=40.0,
                       solver="cg", cg_steps=5)
    assert all(getattr(params, f.name) != f.default for f in param_fields())  # every field set, so each is passed
    args = cli.build_parser().parse_args(["run", "--data", "x", *params.as_arguments()])
    _, job = cli.job_from(args, "x.csv", "x")
    assert job.params == params
    assert {flag(f.name) for f in param_fields()} <= set(params.as_arguments())
    default = cli.build_parser().parse_args(["run", "--data", "x", *ALSParams().as_arguments()])
    assert cli.job_from(default, "x.csv", "x")[1].params == ALSParams()  # a false switch is left out, not negated


def test_implicit_takes_its_own_defaults_where_none_are_given() -> None:
    def parsed(*args: str) -> ALSParams:
        return cli.job_from(cli.build_parser().parse_args(["run", "--data", "x", *args]), "x.csv", "x")[1].params

    assert parsed("--implicit") == ALSParams(implicit=True, **IMPLICIT_DEFAULTS)
    assert parsed("--implicit", "--rank", "7").rank == 7
    assert parsed("--implicit", "--reg", "0.01").reg == 0.01
    assert parsed() == ALSParams()  # explicit: the study's


def test_solver_choices_are_checked() -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--data", "x", "--solver", "lu"])
    with pytest.raises(ValueError, match="solver 'lu'"):
        ALSParams(solver="lu")
    assert "cholesky only, not cg" in str(registry.lacks(registry.get("python"), ALSParams(solver="cg")))
    assert registry.lacks(registry.get("torch"), ALSParams(solver="cg")) is None


def test_an_implicit_only_library_refuses_explicit_feedback() -> None:
    implicit = registry.get("implicit")
    assert registry.lacks(implicit, ALSParams()) == (
        "the implicit implementation fits implicit feedback only, not explicit (--implicit)")
    assert registry.lacks(implicit, ALSParams(implicit=True, solver="cg")) is None
    assert registry.lacks(registry.get("lenskit"), ALSParams(implicit=True, solver="cg")) is not None


SOURCES = [p for folder in ("recommender", "experiments", "emr") for p in (ROOT / folder).rglob("*.py")]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_else_lists_implementations(path: Path) -> None:
    """No module but the registry holds a literal sequence of implementation names."""
    if path.name == "registry.py":
        return
    name = "|".join(re.escape(name) for name in sorted(registry.NAMES, key=len, reverse=True))
    sequence = re.compile(rf"""["']({name})["']\s*,\s*["']({name})["']""")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        found = sequence.search(line)
        assert found is None, f"{path.name}:{number} lists implementations {found.groups()}: read the registry"
