"""torch-spark's recommend phase, predefined test split and Parquet checks, against the single-node engine."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recommender.data.formats import BadInputError
from recommender.data.readers import ITEM, RATING, USER, write_parquet
from recommender.data.sources import Prepared, prepare
from recommender.params import ALSParams
from recommender.result import RunResult
from tests.engines import run_engine

pytest.importorskip("torch", reason="the PyTorch engines need torch: pip install -r requirements-torch.txt")
pytestmark = [pytest.mark.spark, pytest.mark.torch]
PARAMS = ALSParams(rank=10, iterations=10, reg=0.1, seed=42)
# The lists come from factors equal to float32 rounding (1e-5): a near tie at the k-th place may swap.
RANKING_TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def u1(movielens_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare("ml-100k:u1", movielens_dir, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def single(u1: Prepared) -> RunResult:
    return run_engine("torch", u1.input_for(True), params=PARAMS, data="ml-100k:u1", top_k=10, relevance=4.0,
                      test=u1.test_for(True), clip=(1.0, 5.0))


@pytest.mark.parametrize(("blocks", "parquet"), [(1, True), (2, True), (2, False)])
def test_the_stage_recommends_and_ranks_as_the_single_node_engine(spark, u1: Prepared, single: RunResult,  # type: ignore[no-untyped-def]
                                                                  blocks: int, parquet: bool) -> None:
    """The u1 test file is the holdout (Parquet or text input); RMSE/MAE (clipped), the top-10
    lists' ranking metrics and the most-popular baseline's equal the single-node engine's."""
    result = run_engine("torch-spark", u1.input_for(parquet), params=replace(PARAMS, blocks=blocks),
                        data="ml-100k:u1", spark=spark, top_k=10, relevance=4.0, test=u1.test_for(parquet),
                        clip=(1.0, 5.0))
    assert result.counts == single.counts
    assert (result.counts.ratings, result.counts.holdout) == (100_000, 20_000)
    m, s = result.metrics, single.metrics
    assert m.train_mse == pytest.approx(s.train_mse, rel=1e-5)
    assert (m.holdout_rmse, m.holdout_mae) == pytest.approx((s.holdout_rmse, s.holdout_mae), rel=1e-5)
    assert result.recommended == single.recommended and result.recommended is not None
    assert m.ranking is not None and s.ranking is not None and m.baseline is not None and s.baseline is not None
    assert m.ranking.users == s.ranking.users
    assert asdict(m.ranking) == pytest.approx(asdict(s.ranking), abs=RANKING_TOLERANCE)
    assert asdict(m.baseline) == pytest.approx(asdict(s.baseline), rel=1e-12)  # counts only: the same lists
    assert {"load", "fit", "predict", "evaluate", "recommend"} <= set(result.phases)


def test_rated_items_stay_in_the_lists_when_asked(spark, u1: Prepared) -> None:  # type: ignore[no-untyped-def]
    """--include-rated: the same switch as the single-node engine's, with the same effect on the metrics."""
    options: dict[str, Any] = {"data": "ml-100k:u1", "top_k": 10, "test": u1.test_for(True), "exclude_rated": False}
    single = run_engine("torch", u1.input_for(True), params=PARAMS, **options)
    result = run_engine("torch-spark", u1.input_for(True), params=PARAMS, spark=spark, **options)
    assert result.metrics.baseline == single.metrics.baseline
    assert result.metrics.ranking is not None and single.metrics.ranking is not None
    assert asdict(result.metrics.ranking) == pytest.approx(asdict(single.metrics.ranking), abs=RANKING_TOLERANCE)


@pytest.mark.parametrize(("rows", "problem"), [
    ({USER: [1, -2], ITEM: [1, 2], RATING: [3.0, 4.0]}, r"bad\.parquet: 1 rows with a negative or missing id"),
    ({USER: [1, 2], ITEM: [1, 2], RATING: [3.0, float("nan")]}, r"bad\.parquet: 1 rows with a negative or missing id"),
    ({USER: pd.Series([], dtype="int32"), ITEM: pd.Series([], dtype="int32"), RATING: pd.Series([], dtype="float32")},
     r"bad\.parquet: no ratings"),
])
def test_a_bad_parquet_table_is_refused_naming_it(spark, tmp_path: Path, rows: dict[str, object],  # type: ignore[no-untyped-def]
                                                   problem: str) -> None:
    """The routing pass checks each row; the stage sums the bad rows and fits nothing; the driver
    raises the clean error (no task error, no stack trace)."""
    write_parquet(pd.DataFrame(rows), tmp_path / "bad.parquet")
    with pytest.raises(BadInputError, match=problem):
        run_engine("torch-spark", tmp_path / "bad.parquet", params=PARAMS, spark=spark)
