"""The shared holdout hash, phase timing, parameters and the result line."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender import split
from recommender.params import ALSParams
from recommender.result import Counts, Metrics, ResultLineError, RunResult, Runtime, SparkRuntime, parse_result_line
from recommender.timing import PhaseTimer

pytestmark = pytest.mark.unit
ids = st.integers(0, 2**31 - 1)


def test_hash_arithmetic_never_leaves_signed_64_bits() -> None:
    """The JVM and ANSI Spark SQL overflow at 2^63; every product in the hash stays below it."""
    largest_factor = max(split.A, split.B, split.C, split.D, split.P - 1)
    assert (split.P - 1) * largest_factor < 2**63
    assert 2**31 * largest_factor < 2**63  # an id times a multiplier


@given(user=ids, item=ids, seed=st.integers(0, 2**31 - 1))
def test_hash_is_in_range_and_deterministic(user: int, item: int, seed: int) -> None:
    value = split.holdout_hash(user, item, seed)
    assert 0 <= value < split.P
    assert value == split.holdout_hash(user, item, seed)


def test_holdout_fraction_is_met_per_user() -> None:
    held = [[split.is_holdout(u, i, 42, 0.2) for i in range(1, 501)] for u in range(1, 201)]
    overall = sum(map(sum, held)) / 100_000
    assert overall == pytest.approx(0.2, abs=0.005)  # binomial sd 0.0013
    per_user = [sum(row) / 500 for row in held]
    assert min(per_user) > 0.12 and max(per_user) < 0.28  # sd 0.018: beyond 4 sd


def test_phase_timer_adds_up() -> None:
    timer = PhaseTimer()
    for name in ("load", "fit"):
        with timer.phase(name):
            pass
    assert set(timer.seconds) == {"load", "fit"} and timer.total == sum(timer.seconds.values())
    with pytest.raises(ValueError, match="unknown phase 'train'"), timer.phase("train"):
        pass


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rank": 0}, "rank and iterations"),
        ({"reg": -1.0}, "regularization"),
        ({"holdout": 1.0}, "holdout must be in"),
        ({"blocks": 0}, "blocks"),
    ],
)
def test_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ALSParams(**kwargs)


def sample_result() -> RunResult:
    return RunResult(
        impl="python",
        api="df",
        data="ml-100k",
        input="/data/ratings.csv",
        input_bytes=979_173,
        params={"rank": 10, "iterations": 15, "reg": 0.1, "seed": 42, "blocks": 2, "holdout": 0.2},
        counts=Counts(100_000, 0, 943, 1682, 80_230, 19_770, 80_230, 19_740),
        metrics=Metrics(0.55, 0.92, 0.73),
        phases={"load": 1.0, "fit": 2.0, "predict": 3.0, "evaluate": 4.0, "total": 10.0},
        runtime=Runtime(spark=SparkRuntime("4.1.1", "local[2]", "local-1", 2)),
        started_at="2026-11-24T00:00:00+00:00",
    )


def test_result_line_round_trips() -> None:
    line = sample_result().to_line()
    assert line.startswith("ALS_RESULT {") and "\n" not in line
    parsed = parse_result_line(f"log noise\n{line}\nmore noise\n")
    assert parsed["metrics"]["holdout_rmse"] == 0.92
    assert parsed["counts"]["holdout_predictions"] == 19_740


@pytest.mark.parametrize(
    "output, message",
    [
        ("nothing here", "found 0"),
        ("ALS_RESULT {}\nALS_RESULT {}", "found 2"),
        ("ALS_RESULT {not json", "not valid JSON"),
        ("ALS_RESULT [1, 2]", "not an object"),
        ('ALS_RESULT {"schema": 1, "impl": "python"}', "schema 1 is not the supported 2"),
        ('ALS_RESULT {"schema": 2, "impl": "python"}', "does not match schema 2 at the top level: 'api' is a required"),
    ],
)
def test_bad_result_output(output: str, message: str) -> None:
    with pytest.raises(ResultLineError, match=message):
        parse_result_line(output)


def test_result_line_refuses_nan() -> None:
    result = dataclasses.replace(sample_result(), metrics=Metrics(float("nan")))
    with pytest.raises(ValueError, match="Out of range float values"):
        result.to_line()
