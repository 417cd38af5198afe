"""The recommend, ranking, test-split and clip options: refused where they cannot apply, passed on
to every launched program in one spelling."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recommender.engine import Job, check
from recommender.launch import registry
from recommender.launch.submit import job_arguments
from recommender.params import ALSParams

pytestmark = pytest.mark.unit


def job(**options: object) -> Job:
    return Job("df", "r.csv", "r", ALSParams(), **options)


@pytest.mark.parametrize(("impl", "options", "problem"), [
    ("python", {"top_k": -1}, "--top-k -1: expected 0"),
    ("python", {"relevance": 4.0}, "--relevance: ranking metrics need the recommend phase"),
    ("python", {"clip": (5.0, 1.0)}, "--clip 5.0,1.0: expected LOW,HIGH with LOW < HIGH"),
])
def test_options_that_cannot_apply_are_refused(impl: str, options: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check(registry.get(impl), job(**options))


@pytest.mark.parametrize(("lacks", "options", "problem"), [
    ({"recommends": False}, {"top_k": 10}, "--top-k: the python implementation has no recommend phase yet"),
    ({"reads_test": False}, {"test": "t.csv"}, "--test: the python implementation has no predefined test split yet"),
])
def test_an_engine_without_a_feature_refuses_its_option(lacks: dict, options: dict, problem: str) -> None:
    """Every registered engine has both today; a new one may come without them."""
    with pytest.raises(ValueError, match=problem):
        check(replace(registry.get("python"), **lacks), job(**options))


def test_a_test_file_replaces_the_holdout() -> None:
    with pytest.raises(ValueError, match="--test replaces the random holdout"):
        check(registry.get("python"), Job("df", "r.csv", "r", ALSParams(holdout=0.2), test="t.csv"))


def test_every_implementation_recommends_and_reads_a_test_file() -> None:
    assert all(impl.recommends and impl.reads_test for impl in registry.IMPLEMENTATIONS)


def test_the_options_reach_the_launched_programs() -> None:
    args = job_arguments(job(top_k=10, exclude_rated=False, relevance=4.0, test="t.csv", clip=(1.0, 5.0)))
    tail = args[args.index("--top-k"):]
    assert tail == ["--top-k", "10", "--include-rated", "--relevance", "4.0", "--test", "t.csv", "--clip", "1.0,5.0"]
    assert "--top-k" not in job_arguments(job())
