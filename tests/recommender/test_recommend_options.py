"""The recommend, ranking, test-split and clip options: refused where they cannot apply, passed on
to every launched program in one spelling."""

from __future__ import annotations

import pytest

from recommender.engine import Job, check
from recommender.launch import registry
from recommender.launch.submit import job_arguments
from recommender.params import ALSParams

pytestmark = pytest.mark.unit


def job(**options: object) -> Job:
    return Job("df", "r.csv", "r", ALSParams(), **options)


@pytest.mark.parametrize(("impl", "options", "problem"), [
    ("torch-spark", {"top_k": 10}, "--top-k: the torch-spark implementation has no recommend phase yet"),
    ("python", {"top_k": -1}, "--top-k -1: expected 0"),
    ("python", {"relevance": 4.0}, "--relevance: ranking metrics need the recommend phase"),
    ("torch-spark", {"test": "t.csv"}, "--test: the torch-spark implementation has no predefined test split yet"),
    ("python", {"clip": (5.0, 1.0)}, "--clip 5.0,1.0: expected LOW,HIGH with LOW < HIGH"),
])
def test_options_that_cannot_apply_are_refused(impl: str, options: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check(registry.get(impl), job(**options))


def test_a_test_file_replaces_the_holdout() -> None:
    with pytest.raises(ValueError, match="--test replaces the random holdout"):
        check(registry.get("python"), Job("df", "r.csv", "r", ALSParams(holdout=0.2), test="t.csv"))


def test_every_implementation_but_torch_spark_recommends_and_reads_a_test_file() -> None:
    assert {impl.name for impl in registry.IMPLEMENTATIONS if impl.recommends} == {"python", "scala", "java", "torch"}
    assert {impl.name for impl in registry.IMPLEMENTATIONS if impl.reads_test} == {"python", "scala", "java", "torch"}


def test_the_options_reach_the_launched_programs() -> None:
    args = job_arguments(job(top_k=10, exclude_rated=False, relevance=4.0, test="t.csv", clip=(1.0, 5.0)))
    tail = args[args.index("--top-k"):]
    assert tail == ["--top-k", "10", "--include-rated", "--relevance", "4.0", "--test", "t.csv", "--clip", "1.0,5.0"]
    assert "--top-k" not in job_arguments(job())
