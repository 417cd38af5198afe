"""The DataFrame recommender, `pyspark.ml.recommendation.ALS`.

Same objective, parameters and evaluation as the RDD one; the predict and evaluate steps stay in
the JVM, which is where the DataFrame API wins over the study's Python join.

With `params.implicit` the estimator is `ALS(implicitPrefs=True, alpha=params.alpha)`, MLlib's
implicit-feedback ALS: it predicts a preference p (1 where the rating r > 0, else 0), not a rating,
so the training MSE and the holdout RMSE and MAE are measured against p, and holdout predictions
are not clipped to the rating scale (`Job.holdout_clip`). The recommend phase is the same in
both modes: it ranks by the model's scores.
"""

from __future__ import annotations

from dataclasses import replace

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from recommender.data.columns import ITEM, RATING, USER
from recommender.data.formats import BadInputError
from recommender.engine import Job
from recommender.params import ALSParams
from recommender.result import Counts, Metrics, Recommended
from recommender.spark import ranking
from recommender.spark.loading import Loaded, load_df, no_training_left
from recommender.split import holdout_sql, threshold
from recommender.timing import PhaseTimer

TEST = "_test"  # marks the predefined test ratings (--test)


def _predict(model: ALSModel, ratings: DataFrame) -> tuple[DataFrame, int]:
    predictions = model.transform(ratings).cache()
    return predictions, predictions.count()


def with_test(ratings: DataFrame, loaded: Loaded, test: DataFrame, test_loaded: Loaded) -> tuple[DataFrame, Loaded]:
    """The training and the predefined test ratings in one DataFrame, the test ones marked (`split` reads the mark)."""
    both = ratings.withColumn(TEST, F.lit(False)).unionByName(test.withColumn(TEST, F.lit(True)))
    return both, Loaded(loaded.ratings + test_loaded.ratings, loaded.skipped + test_loaded.skipped,
                        loaded.examples + test_loaded.examples)


def split(ratings: DataFrame, params: ALSParams) -> tuple[DataFrame, DataFrame | None, Column]:
    """(training ratings, holdout ratings or None, the holdout condition): the predefined test
    ratings where `with_test` marked them, else the shared hash split."""
    if TEST in ratings.columns:
        held = F.col(TEST)
        return ratings.filter(~held).drop(TEST), ratings.filter(held).drop(TEST), held
    held = F.expr(holdout_sql(USER, ITEM, params.seed)) < threshold(params.holdout)
    if not params.holdout:
        return ratings, None, held
    return ratings.filter(~held), ratings.filter(held), held


def preference(rating: Column) -> Column:
    """What implicit-feedback ALS predicts for a rating: MLlib's preference, 1 where it is positive, else 0."""
    return F.when(rating > 0, F.lit(1.0)).otherwise(F.lit(0.0))


def errors(predictions: DataFrame, clip: tuple[float, float] | None = None,
           implicit: bool = False) -> tuple[float, float, int]:
    """(sum of squared errors, sum of absolute errors, rows) of a predictions DataFrame, each
    prediction first clipped to `clip` where given; `implicit`: errors against each rating's
    preference (`preference`) instead of the rating."""
    predicted = F.col("prediction").cast("double")
    if clip is not None:
        predicted = F.least(F.greatest(predicted, F.lit(clip[0])), F.lit(clip[1]))
    rating = F.col(RATING).cast("double")
    error = (preference(rating) if implicit else rating) - predicted
    row = predictions.agg(
        F.sum(error * error).alias("sq"), F.sum(F.abs(error)).alias("abs"), F.count("*").alias("n")
    ).first()
    assert row is not None
    return row["sq"] or 0.0, row["abs"] or 0.0, row["n"]


def _unrated(found: DataFrame, rated: DataFrame | None, k: int) -> DataFrame:
    """(user, items): the first k items of MLlib's (user, recommendations) that the user did not rate."""
    return ranking.keep_unrated(found.select(USER, F.col("recommendations")[ITEM].alias(ranking.LIST)), rated, k)


def top_lists(model: ALSModel, train: DataFrame, k: int, exclude_rated: bool,
              margin: int | None = None) -> tuple[DataFrame, DataFrame | None, int, ranking.Passes]:
    """(user, items: their k best, cached), (user, rated) or None, the most items a user rated, and
    the passes: `recommendForAllUsers(k + margin)`, then `recommendForUserSubset` for the users
    left short (spark/ranking.py); `margin` defaults to ranking.margin's choice."""
    if not exclude_rated:
        return _unrated(model.recommendForAllUsers(k), None, k).cache(), None, 0, ranking.Passes(0)
    rated, counts = ranking.rated_items(train)
    m = ranking.margin(counts, k) if margin is None else margin
    first = _unrated(model.recommendForAllUsers(k + m), rated, k).cache()
    short = first.join(rated, USER).where((F.size(ranking.LIST) < k) & (F.size(ranking.RATED) > m))
    row = short.agg(F.count("*").alias("users"), F.max(F.size(ranking.RATED)).alias("most")).first()
    assert row is not None
    passes = ranking.Passes(m, row["users"], row["most"] or 0)
    if not passes.second_users:
        return first, rated, max(counts, default=0), passes
    users = short.select(USER).cache()
    again = _unrated(model.recommendForUserSubset(users, k + passes.second_asked), rated, k)
    lists = first.join(users, USER, "left_anti").unionByName(again).cache()
    lists.count()
    first.unpersist()
    users.unpersist()
    return lists, rated, max(counts, default=0), passes


def recommend(model: ALSModel, train: DataFrame, holdout: DataFrame | None, job: Job, timer: PhaseTimer,
              metrics: Metrics) -> tuple[Metrics, Recommended]:
    """The recommend phase, `recommendForAllUsers`, rated items left out (spark/ranking.py); with
    a holdout, the ranking metrics of its lists and of the most-popular baseline's."""
    k = min(job.top_k, model.itemFactors.count())
    with timer.phase("recommend"):
        lists, rated, most, _ = top_lists(model, train, k, job.exclude_rated)
        users = lists.count()
    if holdout is not None:
        with timer.phase("evaluate"):
            relevant = ranking.relevant_items(holdout, job.relevance).cache()
            baseline = ranking.popular(train, rated, lists.select(USER), k, most)
            metrics = replace(metrics, ranking=ranking.evaluate_df(lists, relevant, k),
                              baseline=ranking.evaluate_df(baseline, relevant, k))
            relevant.unpersist()
    for cached in (lists, rated):
        if cached is not None:
            cached.unpersist()
    return metrics, Recommended(k, users, job.exclude_rated, job.relevance)


def run(spark: SparkSession, job: Job, timer: PhaseTimer) -> tuple[Counts, Metrics, list[str], Recommended | None]:
    """Load, fit, predict, evaluate and (with `job.top_k`) recommend, each phase forced by an action and timed."""
    params = job.params
    blocks = params.blocks or spark.sparkContext.defaultParallelism
    with timer.phase("load"):
        ratings, loaded = load_df(spark, job.path, job.skip_bad_rows, job.unique_pairs)
        if job.test is not None:
            ratings, loaded = with_test(ratings, loaded, *load_df(spark, job.test, job.skip_bad_rows, job.unique_pairs))

    train, holdout, held = split(ratings, params)
    cut = holdout is not None
    if train.isEmpty():
        raise BadInputError(job.path, no_training_left(params.holdout))

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
        implicitPrefs=params.implicit,
        alpha=params.alpha,
        coldStartStrategy="drop",  # as mllib's predictAll: no prediction for unseen users or items
    )
    with timer.phase("fit"):
        model = als.fit(train)
        model.userFactors.count()
    with timer.phase("predict"):
        train_pred, n_train_pred = _predict(model, train)
        held_pred, n_held_pred = _predict(model, holdout) if holdout is not None else (None, 0)
    with timer.phase("evaluate"):
        implicit = params.implicit
        sq, _, n = errors(train_pred, implicit=implicit)
        held_sums = errors(held_pred, job.holdout_clip, implicit) if held_pred is not None else None
        metrics = Metrics.from_sums((sq, n), held_sums)

    recommended = None
    if job.top_k:
        metrics, recommended = recommend(model, train, holdout, job, timer, metrics)

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
    return counts, metrics, loaded.examples, recommended
