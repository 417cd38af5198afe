"""The RDD recommender, `pyspark.mllib.recommendation.ALS`, as the original study ran it.

Train, predict every training pair, join the predictions with the ratings, and take the MSE;
with a holdout fraction, the same for the held-out pairs gives RMSE and MAE.
"""

from __future__ import annotations

from pyspark import RDD
from pyspark.mllib.recommendation import ALS, MatrixFactorizationModel, Rating
from pyspark.sql import SparkSession

from recommender.data.formats import BadInputError
from recommender.params import ALSParams
from recommender.result import Counts, Metrics
from recommender.spark.loading import load_rdd, no_training_left
from recommender.split import holdout_hash, threshold
from recommender.timing import PhaseTimer

Keyed = RDD[tuple[tuple[int, int], float]]


def _predict(model: MatrixFactorizationModel, ratings: RDD[Rating]) -> tuple[Keyed, int]:
    predictions = model.predictAll(ratings.map(lambda r: (r[0], r[1])))
    keyed = predictions.map(lambda r: ((r[0], r[1]), r[2])).cache()
    return keyed, keyed.count()


def _errors(ratings: RDD[Rating], predictions: Keyed) -> tuple[float, float, int]:
    """(sum of squared errors, sum of absolute errors, pairs) over ratings that have a prediction."""
    pairs = ratings.map(lambda r: ((r[0], r[1]), r[2])).join(predictions).values()
    return pairs.map(lambda p: ((p[0] - p[1]) ** 2, abs(p[0] - p[1]), 1)).fold(
        (0.0, 0.0, 0), lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2])
    )


def run(
    spark: SparkSession, path: str, params: ALSParams, skip_bad_rows: bool, timer: PhaseTimer
) -> tuple[Counts, Metrics, list[str]]:
    """Load, fit, predict and evaluate, each phase forced by an action and timed."""
    sc = spark.sparkContext
    blocks = params.blocks or sc.defaultParallelism
    with timer.phase("load"):
        ratings, loaded = load_rdd(spark, path, skip_bad_rows)

    seed, cut = params.seed, threshold(params.holdout)
    train = ratings.filter(lambda r: holdout_hash(r[0], r[1], seed) >= cut) if cut else ratings
    holdout = ratings.filter(lambda r: holdout_hash(r[0], r[1], seed) < cut) if cut else None
    if train.isEmpty():
        raise BadInputError(path, no_training_left(params.holdout))

    with timer.phase("fit"):
        model = ALS.train(train, params.rank, params.iterations, params.reg, blocks, seed=seed)
        model.userFeatures().count()
    with timer.phase("predict"):
        train_pred, n_train_pred = _predict(model, train)
        held_pred, n_held_pred = _predict(model, holdout) if holdout is not None else (None, 0)
    with timer.phase("evaluate"):
        sq, _, n = _errors(train, train_pred)
        held = _errors(holdout, held_pred) if holdout is not None and held_pred is not None else None
        metrics = Metrics.from_sums((sq, n), held)

    counts = Counts(
        ratings=loaded.ratings,
        skipped_rows=loaded.skipped,
        users=ratings.map(lambda r: r[0]).distinct().count(),
        items=ratings.map(lambda r: r[1]).distinct().count(),
        train=train.count(),
        holdout=holdout.count() if holdout is not None else 0,
        train_predictions=n_train_pred,
        holdout_predictions=n_held_pred,
    )
    return counts, metrics, loaded.examples
