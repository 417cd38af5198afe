"""The DataFrame recommender, `pyspark.ml.recommendation.ALS`.

Same objective, parameters and evaluation as the RDD one; the predict and evaluate steps stay in
the JVM, which is where the DataFrame API wins over the study's Python join.
"""

from __future__ import annotations

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.formats import BadInputError
from recommender.params import ALSParams
from recommender.result import Counts, Metrics
from recommender.spark.loading import load_df, no_training_left
from recommender.split import holdout_sql, threshold
from recommender.timing import PhaseTimer


def _predict(model: ALSModel, ratings: DataFrame) -> tuple[DataFrame, int]:
    predictions = model.transform(ratings).cache()
    return predictions, predictions.count()


def split(ratings: DataFrame, params: ALSParams) -> tuple[DataFrame, DataFrame | None, Column]:
    """(training ratings, holdout ratings or None, the holdout condition): the shared hash split."""
    held = F.expr(holdout_sql(USER, ITEM, params.seed)) < threshold(params.holdout)
    if not params.holdout:
        return ratings, None, held
    return ratings.filter(~held), ratings.filter(held), held


def errors(predictions: DataFrame) -> tuple[float, float, int]:
    """(sum of squared errors, sum of absolute errors, rows) of a predictions DataFrame."""
    error = F.col(RATING).cast("double") - F.col("prediction").cast("double")
    row = predictions.agg(
        F.sum(error * error).alias("sq"), F.sum(F.abs(error)).alias("abs"), F.count("*").alias("n")
    ).first()
    assert row is not None
    return row["sq"] or 0.0, row["abs"] or 0.0, row["n"]


def run(
    spark: SparkSession, path: str, params: ALSParams, skip_bad_rows: bool, timer: PhaseTimer
) -> tuple[Counts, Metrics, list[str]]:
    """Load, fit, predict and evaluate, each phase forced by an action and timed."""
    blocks = params.blocks or spark.sparkContext.defaultParallelism
    with timer.phase("load"):
        ratings, loaded = load_df(spark, path, skip_bad_rows)

    train, holdout, held = split(ratings, params)
    cut = holdout is not None
    if train.isEmpty():
        raise BadInputError(path, no_training_left(params.holdout))

    als = ALS(
        rank=params.rank,
        maxIter=params.iterations,
        regParam=params.reg,
        seed=params.seed,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        userCol=USER,
        itemCol=ITEM,
        ratingCol=RATING,
        coldStartStrategy="drop",  # as mllib's predictAll: no prediction for unseen users or items
    )
    with timer.phase("fit"):
        model = als.fit(train)
        model.userFactors.count()
    with timer.phase("predict"):
        train_pred, n_train_pred = _predict(model, train)
        held_pred, n_held_pred = _predict(model, holdout) if holdout is not None else (None, 0)
    with timer.phase("evaluate"):
        sq, _, n = errors(train_pred)
        metrics = Metrics.from_sums((sq, n), errors(held_pred) if held_pred is not None else None)

    sizes = ratings.agg(
        F.countDistinct(USER).alias("users"),
        F.countDistinct(ITEM).alias("items"),
        F.sum((~held).cast("long") if cut else F.lit(1)).alias("train"),
    ).first()
    assert sizes is not None
    counts = Counts(
        ratings=loaded.ratings,
        skipped_rows=loaded.skipped,
        users=sizes["users"],
        items=sizes["items"],
        train=sizes["train"],
        holdout=loaded.ratings - sizes["train"],
        train_predictions=n_train_pred,
        holdout_predictions=n_held_pred,
    )
    return counts, metrics, loaded.examples
