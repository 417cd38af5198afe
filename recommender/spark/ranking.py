"""The recommend phase's Spark parts that MLlib's two APIs share: leaving rated items out, the
most-popular baseline, and ranking metrics by Spark's own `RankingMetrics` / `RankingEvaluator`.

Rated items are left out exactly: MLlib is asked for k + (the most items any user rated) per user,
then each list drops that user's rated items and keeps the first k. A user's list loses at most
their own rated items, so k remain whenever the catalogue has them; MLlib has no per-user
exclusion of its own. The cost grows with that maximum (ml-100k: 737).
"""

from __future__ import annotations

from typing import Literal

from pyspark import RDD
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.mllib.evaluation import RankingMetrics
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recommender.data.columns import ITEM, RATING, USER
from recommender.result import Ranking

RATED, LIST, RELEVANT = "rated", "items", "relevant"
Metric = Literal["precisionAtK", "recallAtK", "ndcgAtK", "meanAveragePrecisionAtK"]
METRICS: tuple[tuple[str, Metric], ...] = (("precision", "precisionAtK"), ("recall", "recallAtK"),
                                           ("ndcg", "ndcgAtK"), ("map", "meanAveragePrecisionAtK"))


def rated_items(train: DataFrame) -> tuple[DataFrame, int]:
    """(user, rated: the items they rated in training), cached, and the most items any user rated."""
    rated = train.groupBy(USER).agg(F.collect_set(ITEM).alias(RATED)).cache()
    row = rated.agg(F.max(F.size(RATED))).first()
    return rated, int(row[0] or 0) if row is not None else 0


def asked(k: int, most_rated: int, exclude_rated: bool) -> int:
    """How many items to ask MLlib for, so that k remain once rated ones are left out."""
    return k + most_rated if exclude_rated else k


def keep_unrated(lists: DataFrame, rated: DataFrame | None, k: int) -> DataFrame:
    """(user, items): the first k items of each list (user, items) that the user did not rate."""
    if rated is None:
        return lists.select(USER, F.slice(LIST, 1, k).alias(LIST))
    unrated = F.filter(LIST, lambda item: ~F.array_contains(F.coalesce(RATED, F.array()), item))
    return lists.join(rated, USER, "left").select(USER, F.slice(unrated, 1, k).alias(LIST))


def popular(train: DataFrame, rated: DataFrame | None, users: DataFrame, k: int, most_rated: int) -> DataFrame:
    """(user, items) of the most-popular baseline: items by training count, most first, ties by the
    lower id, rated ones left out the same way as the model's."""
    head = train.groupBy(ITEM).count().orderBy(F.desc("count"), ITEM).limit(asked(k, most_rated, rated is not None))
    order = [row[ITEM] for row in head.collect()]
    lists = users.select(USER, F.array(*[F.lit(item) for item in order]).cast("array<int>").alias(LIST))
    return keep_unrated(lists, rated, k)


def relevant_items(holdout: DataFrame, threshold: float | None) -> DataFrame:
    """(user, relevant: their held-out items rated at least `threshold`, or all of them)."""
    kept = holdout if threshold is None else holdout.filter(F.col(RATING) >= threshold)
    return kept.groupBy(USER).agg(F.collect_set(ITEM).alias(RELEVANT))


def _pairs(lists: DataFrame, relevant: DataFrame) -> DataFrame:
    """Users with a list and a relevant item: (prediction, label) as arrays of doubles."""
    return lists.join(relevant, USER).select(
        F.col(LIST).cast("array<double>").alias("prediction"), F.col(RELEVANT).cast("array<double>").alias("label"))


def evaluate_df(lists: DataFrame, relevant: DataFrame, k: int) -> Ranking | None:
    """The four metrics by `pyspark.ml.evaluation.RankingEvaluator` (the DataFrame API's)."""
    pairs = _pairs(lists, relevant).cache()
    users = pairs.count()
    if not users:
        return None
    values = {name: RankingEvaluator(metricName=metric, k=k).evaluate(pairs) for name, metric in METRICS}
    pairs.unpersist()
    return Ranking(k=k, users=users, **values)


def evaluate_rdd(lists: RDD[tuple[int, list[int]]], relevant: RDD[tuple[int, list[int]]], k: int) -> Ranking | None:
    """The four metrics by `pyspark.mllib.evaluation.RankingMetrics` (the RDD API's)."""
    pairs = lists.join(relevant).values().cache()
    users = pairs.count()
    if not users:
        return None
    metrics = RankingMetrics(pairs)
    ranking = Ranking(k=k, users=users, precision=metrics.precisionAt(k), recall=metrics.recallAt(k),
                      ndcg=metrics.ndcgAt(k), map=metrics.meanAveragePrecisionAt(k))
    pairs.unpersist()
    return ranking
