"""The RDD recommender, `pyspark.mllib.recommendation.ALS`, as the original study ran it.

Train, predict every training pair, join the predictions with the ratings, and take the MSE;
with a holdout fraction, the same for the held-out pairs gives RMSE and MAE.

With `params.implicit` the model is `ALS.trainImplicit(..., alpha=params.alpha)`, MLlib's
implicit-feedback ALS: it predicts a preference p (1 where the rating r > 0, else 0), not a rating,
so the training MSE and the holdout RMSE and MAE are measured against p, and holdout predictions
are not clipped to the rating scale (`Job.holdout_clip`). The recommend phase is the same in
both modes: it ranks by the model's scores.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pyspark import RDD
from pyspark.mllib.common import _py2java
from pyspark.mllib.recommendation import ALS, MatrixFactorizationModel, Rating
from pyspark.sql import SparkSession

from recommender.data.formats import BadInputError
from recommender.engine import Job
from recommender.result import Counts, Metrics, Recommended
from recommender.spark import ranking
from recommender.spark.loading import Loaded, load_rdd, no_training_left
from recommender.split import holdout_hash, threshold
from recommender.timing import PhaseTimer

Keyed = RDD[tuple[tuple[int, int], float]]
Rated = RDD[tuple[int, frozenset[int]]]


def _predict(model: MatrixFactorizationModel, ratings: RDD[Rating]) -> tuple[Keyed, int]:
    predictions = model.predictAll(ratings.map(lambda r: (r[0], r[1])))
    keyed = predictions.map(lambda r: ((r[0], r[1]), r[2])).cache()
    return keyed, keyed.count()


def preference(rating: float) -> float:
    """What implicit-feedback ALS predicts for a rating: MLlib's preference, 1 where it is positive, else 0."""
    return 1.0 if rating > 0 else 0.0


def _errors(ratings: RDD[Rating], predictions: Keyed, clip: tuple[float, float] | None = None,
            implicit: bool = False) -> tuple[float, float, int]:
    """(sum of squared errors, sum of absolute errors, pairs) over ratings that have a prediction,
    each prediction first clipped to `clip` where given; `implicit`: errors against each rating's
    preference (`preference`) instead of the rating."""
    keyed = (ratings.map(lambda r: ((r[0], r[1]), preference(r[2]))) if implicit
             else ratings.map(lambda r: ((r[0], r[1]), r[2])))
    pairs = keyed.join(predictions).values()
    if clip is not None:
        low, high = clip
        pairs = pairs.map(lambda p: (p[0], min(max(p[1], low), high)))
    return pairs.map(lambda p: ((p[0] - p[1]) ** 2, abs(p[0] - p[1]), 1)).fold(
        (0.0, 0.0, 0), lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2])
    )


def _popularity(item_count: tuple[int, int]) -> tuple[int, int]:
    """Most rated first, ties by the lower id."""
    return -item_count[1], item_count[0]


def _without(model: MatrixFactorizationModel, done: RDD[int]) -> MatrixFactorizationModel:
    """MLlib's model of the same factors less the users in `done`: pyspark.mllib has no
    recommendForUserSubset, so the second pass builds MLlib's own class on the JVM side (py4j) with
    the other users' factors, and its `recommendProductsForUsers` gives just their lists."""
    sc = done.context
    jvm = sc._jvm
    assert jvm is not None
    java = model._java_model
    keys = jvm.org.apache.spark.mllib.api.python.SerDe.asTupleRDD(_py2java(sc, done.map(lambda u: (u, u))).rdd())
    features = jvm.org.apache.spark.api.java.JavaPairRDD.fromJavaRDD(java.userFeatures().toJavaRDD())
    rest = features.subtractByKey(jvm.org.apache.spark.api.java.JavaPairRDD.fromJavaRDD(keys.toJavaRDD()))
    recommendation = jvm.org.apache.spark.mllib.recommendation
    subset = recommendation.MatrixFactorizationModel(model.rank, rest.rdd(), java.productFeatures())
    return MatrixFactorizationModel(jvm.org.apache.spark.mllib.api.python.MatrixFactorizationModelWrapper(subset))


def _unrated(found: RDD[tuple[int, Any]], rated: RDD[tuple[int, frozenset[int]]],
             k: int) -> RDD[tuple[int, tuple[list[int], int]]]:
    """(user, (the first k recommended items they did not rate, how many they rated))."""
    return found.join(rated).mapValues(lambda p: ([r.product for r in p[0] if r.product not in p[1]][:k], len(p[1])))


def top_lists(model: MatrixFactorizationModel, train: RDD[Rating], k: int, exclude_rated: bool,
              margin: int | None = None) -> tuple[RDD[tuple[int, list[int]]], Rated | None, int, ranking.Passes]:
    """(user, their k best items), cached, (user, rated items) or None, the most items a user rated,
    and the passes: `recommendProductsForUsers(k + margin)`, then the same on a model of just the
    users left short (spark/ranking.py); `margin` defaults to ranking.margin's choice."""
    if not exclude_rated:
        lists = model.recommendProductsForUsers(k).mapValues(lambda rs: [r.product for r in rs][:k]).cache()
        return lists, None, 0, ranking.Passes(0)
    rated = train.map(lambda r: (r[0], r[1])).groupByKey().mapValues(frozenset).cache()
    counts = dict(rated.map(lambda p: len(p[1])).countByValue())
    m = ranking.margin(counts, k) if margin is None else margin
    first = _unrated(model.recommendProductsForUsers(k + m), rated, k).cache()

    def cut(pair: tuple[int, tuple[list[int], int]]) -> bool:
        """Left with fewer than k, having rated more than m: the first pass may have cut the list."""
        return len(pair[1][0]) < k and pair[1][1] > m

    users, most_short = first.filter(cut).map(lambda p: (1, p[1][1])).fold(
        (0, 0), lambda a, b: (a[0] + b[0], max(a[1], b[1])))
    passes = ranking.Passes(m, users, most_short)
    if not users:
        lists = first.mapValues(lambda p: p[0]).cache()
    else:
        done = first.filter(lambda pair: not cut(pair))
        again = _unrated(_without(model, done.keys()).recommendProductsForUsers(k + most_short), rated, k)
        lists = done.union(again).mapValues(lambda p: p[0]).cache()
    lists.count()
    first.unpersist()
    return lists, rated, max(counts, default=0), passes


def recommend(model: MatrixFactorizationModel, train: RDD[Rating], holdout: RDD[Rating] | None, job: Job,
              timer: PhaseTimer, metrics: Metrics) -> tuple[Metrics, Recommended]:
    """The recommend phase, `recommendProductsForUsers`, rated items left out the way spark/ranking.py
    says; with a holdout, the ranking metrics of its lists and of the most-popular baseline's."""
    k = min(job.top_k, model.productFeatures().count())
    with timer.phase("recommend"):
        lists, rated, most, _ = top_lists(model, train, k, job.exclude_rated)
        users = lists.count()
    if holdout is not None:
        with timer.phase("evaluate"):
            threshold = job.relevance
            relevant = holdout.filter(lambda r: threshold is None or r[2] >= threshold).map(
                lambda r: (r[0], r[1])).groupByKey().mapValues(list).cache()
            counts = train.map(lambda r: (r[1], 1)).reduceByKey(lambda a, b: a + b)
            ranked = sorted(counts.collect(), key=_popularity)  # one count per item: a small list
            order = [i for i, _ in ranked[: ranking.asked(k, most, job.exclude_rated)]]
            baseline = (rated.mapValues(lambda s: [i for i in order if i not in s][:k]) if rated is not None
                        else lists.mapValues(lambda _: order[:k]))
            metrics = replace(metrics, ranking=ranking.evaluate_rdd(lists, relevant, k),
                              baseline=ranking.evaluate_rdd(baseline, relevant, k))
            relevant.unpersist()
    lists.unpersist()
    if rated is not None:
        rated.unpersist()
    return metrics, Recommended(k, users, job.exclude_rated, job.relevance)


def run(spark: SparkSession, job: Job, timer: PhaseTimer) -> tuple[Counts, Metrics, list[str], Recommended | None]:
    """Load, fit, predict, evaluate and (with `job.top_k`) recommend, each phase forced by an action and timed."""
    sc, params = spark.sparkContext, job.params
    blocks = params.blocks or sc.defaultParallelism
    with timer.phase("load"):
        ratings, loaded = load_rdd(spark, job.path, job.skip_bad_rows, job.unique_pairs)
        test = load_rdd(spark, job.test, job.skip_bad_rows, job.unique_pairs) if job.test is not None else None

    seed, cut = params.seed, threshold(params.holdout)
    train = ratings.filter(lambda r: holdout_hash(r[0], r[1], seed) >= cut) if cut else ratings
    holdout = ratings.filter(lambda r: holdout_hash(r[0], r[1], seed) < cut) if cut else None
    if test is not None:  # a predefined test file replaces the hashed holdout
        holdout, ratings = test[0], ratings.union(test[0])
        loaded = Loaded(loaded.ratings + test[1].ratings, loaded.skipped + test[1].skipped,
                        loaded.examples + test[1].examples)
    if train.isEmpty():
        raise BadInputError(job.path, no_training_left(params.holdout))

    with timer.phase("fit"):
        if params.implicit:
            model = ALS.trainImplicit(train, params.rank, params.iterations, params.reg, blocks,
                                      alpha=params.alpha, seed=seed)
        else:
            model = ALS.train(train, params.rank, params.iterations, params.reg, blocks, seed=seed)
        model.userFeatures().count()
    with timer.phase("predict"):
        train_pred, n_train_pred = _predict(model, train)
        held_pred, n_held_pred = _predict(model, holdout) if holdout is not None else (None, 0)
    with timer.phase("evaluate"):
        implicit = params.implicit
        sq, _, n = _errors(train, train_pred, implicit=implicit)
        held = (_errors(holdout, held_pred, job.holdout_clip, implicit) if holdout is not None and held_pred is not None
                else None)
        metrics = Metrics.from_sums((sq, n), held)

    recommended = None
    if job.top_k:
        metrics, recommended = recommend(model, train, holdout, job, timer, metrics)

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
    return counts, metrics, loaded.examples, recommended
