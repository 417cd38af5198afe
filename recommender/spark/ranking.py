"""The recommend phase's Spark parts that MLlib's two APIs share: leaving rated items out, the
most-popular baseline, and ranking metrics by Spark's own `RankingMetrics` / `RankingEvaluator`.

Rated items are left out exactly, in two passes, since MLlib has no per-user exclusion of its own:
MLlib is asked for k + m items of every user, each list drops that user's rated items and keeps the
first k; the users left with fewer than k who rated more than m items get a second pass asking k +
(the most they rated), for just them. A list loses at most its user's rated items, so the second
pass gives every such user k whenever the catalogue has them, and the lists are those of one pass
asking every user for k + (the most items anyone rated). That one pass costs too much at scale
(ml-20m: a user rated 9,254 items); `margin` picks m.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Passes:
    """How the lists were made: k + margin items asked of every user, then k + `second_asked` of
    `second_users` users (none: one pass was enough)."""

    margin: int
    second_users: int = 0
    second_asked: int = 0


def margin(rated_counts: Mapping[int, int], k: int) -> int:
    """The first pass's m, from {items rated: users who rated that many}: the m that asks MLlib for the
    fewest items in both passes at worst, (k + m) * users + (k + most) * (users who rated more than m),
    the smallest such m on ties. Both passes score every item for their users (the same cost per
    user); what grows with the ask is each user's top list, kept, sorted and shuffled per item block.
    scala/.../Recommend.scala `margin` is the same rule."""
    users = sum(rated_counts.values())
    most = max(rated_counts, default=0)
    best, best_cost, above = 0, None, users
    for m in sorted({0, *rated_counts}):
        above -= rated_counts.get(m, 0)  # users who rated more than m
        cost = (k + m) * users + (k + most) * above
        if best_cost is None or cost < best_cost:
            best, best_cost = m, cost
    return best


def rated_items(train: DataFrame) -> tuple[DataFrame, dict[int, int]]:
    """(user, rated: the items they rated in training), cached, and {items rated: users who rated that many}."""
    rated = train.groupBy(USER).agg(F.collect_set(ITEM).alias(RATED)).cache()
    counts = rated.groupBy(F.size(RATED).alias("n")).count().collect()
    return rated, {int(row["n"]): int(row["count"]) for row in counts}


def asked(k: int, most_rated: int, exclude_rated: bool) -> int:
    """How many items of a list in popularity order keep k once rated ones are left out."""
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
