"""Ranking metrics: the numpy definitions (torch engine) by hand and against Spark's RankingMetrics,
the popularity order, and MLlib's top-k lists with rated items left out against a brute force, in
one pass or two (spark/ranking.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender import ranking
from recommender.ranking import NO_ITEM


@pytest.mark.unit
def test_metrics_by_hand() -> None:
    # user 7: list [1, 2, 3], relevant {2, 9}; user 8: list [4, 5, NO_ITEM], relevant {4}; user 9: no list.
    lists = np.array([[1, 2, 3], [4, 5, NO_ITEM]])
    result = ranking.evaluate(lists, np.array([7, 8]), np.array([7, 7, 8, 9]), np.array([2, 9, 4, 1]), k=3)
    assert result is not None
    g = [1 / math.log(i + 2) for i in range(3)]
    assert result.users == 2
    assert result.precision == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert result.recall == pytest.approx((1 / 2 + 1) / 2)
    assert result.ndcg == pytest.approx((g[1] / (g[0] + g[1]) + 1) / 2)
    assert result.map == pytest.approx(((1 / 2) / 2 + 1) / 2)


@pytest.mark.unit
def test_no_evaluated_user_is_none() -> None:
    assert ranking.evaluate(np.array([[1]]), np.array([1]), np.array([2]), np.array([1]), k=1) is None


@pytest.mark.unit
def test_popularity_order_counts_then_lower_id() -> None:
    scores = ranking.popularity_scores(np.array([3, 1, 1, 3, 0]), 4)
    assert list(np.argsort(-scores, kind="stable")) == [1, 3, 0, 2]


@pytest.mark.unit
def test_relevance_threshold() -> None:
    assert list(ranking.relevant_mask(np.array([2.0, 4.0, 5.0]), 4.0)) == [False, True, True]
    assert ranking.relevant_mask(np.array([1.0]), None).all()


@pytest.mark.unit
def test_the_margin_asks_the_fewest_items_at_worst() -> None:
    from recommender.spark.ranking import margin

    # 90 users rated 1 item, 10 rated 100; k = 10. m = 0: 10*100 + 110*100; m = 1: 11*100 + 110*10
    # (the second pass for the 10); m = 100: 110*100 (one pass).
    assert margin({1: 90, 100: 10}, 10) == 1
    assert margin({5: 1, 6: 1}, 10) == 6  # 16*2 in one pass beats 15*2 + 16*1
    assert margin({3: 4}, 2) == 3 and margin({}, 5) == 0


@pytest.mark.spark
def test_numpy_metrics_match_sparks_ranking_metrics(spark) -> None:
    """Random lists (some short, some hitting unseen items) scored by both, user for user."""
    from pyspark.mllib.evaluation import RankingMetrics

    rng = np.random.default_rng(3)
    users, items, k = 60, 40, 7
    lists = np.array([rng.permutation(items)[:k] for _ in range(users)])
    lists[rng.random(users) < 0.2, k - 2 :] = NO_ITEM  # lists that ran out of unrated items
    held_u = rng.integers(0, users + 5, 500)  # users beyond the lists: cold, not evaluated
    held_i = rng.integers(0, items + 10, 500)  # items beyond the catalogue: relevant, never hit
    ours = ranking.evaluate(lists, np.arange(users), held_u, held_i, k)
    pairs = [([int(i) for i in lists[u] if i != NO_ITEM], sorted({int(i) for i in held_i[held_u == u]}))
             for u in range(users) if (held_u == u).any()]
    theirs = RankingMetrics(spark.sparkContext.parallelize(pairs))
    assert ours is not None and ours.users == len(pairs)
    assert ours.precision == pytest.approx(theirs.precisionAt(k), abs=1e-12)
    assert ours.recall == pytest.approx(theirs.recallAt(k), abs=1e-12)
    assert ours.ndcg == pytest.approx(theirs.ndcgAt(k), abs=1e-12)
    assert ours.map == pytest.approx(theirs.meanAveragePrecisionAt(k), abs=1e-12)


@pytest.fixture(scope="module")
def small_model(spark):
    """MLlib's DataFrame ALS on 600 random ratings of 30 users and 25 items: (ratings, train, model)."""
    from pyspark.ml.recommendation import ALS

    rng = np.random.default_rng(5)
    rows = {(int(u), int(i)): float(rng.integers(1, 6)) for u, i in zip(rng.integers(0, 30, 600),
                                                                          rng.integers(0, 25, 600), strict=True)}
    train = spark.createDataFrame([(u, i, r) for (u, i), r in rows.items()], "user int, item int, rating float")
    return rows, train, ALS(rank=3, maxIter=5, seed=1, userCol="user", itemCol="item", ratingCol="rating").fit(train)


@pytest.mark.spark
def test_mllib_lists_leave_rated_items_out_exactly(small_model) -> None:
    """recommendForAllUsers(k + most rated), filtered: each user's k best unrated items by the factors."""
    from recommender.spark.df import top_lists

    rows, train, model = small_model
    lists, _, most, _ = top_lists(model, train, 4, exclude_rated=True)
    assert most == max(sum(1 for u, _ in rows if u == user) for user in range(30))
    users = {r["id"]: np.array(r["features"]) for r in model.userFactors.collect()}
    items = {r["id"]: np.array(r["features"]) for r in model.itemFactors.collect()}
    for row in lists.collect():
        unrated = [i for i in items if (row["user"], i) not in rows]
        best = sorted(unrated, key=lambda i: -float(users[row["user"]] @ items[i]))[:4]
        assert row["items"] == best


def most_rated(rows: dict) -> int:
    return max(sum(1 for u, _ in rows if u == user) for user in {u for u, _ in rows})


@pytest.mark.spark
@pytest.mark.parametrize("margin", [0, 2, None])
def test_two_passes_give_the_lists_of_one(small_model, margin: int | None) -> None:
    """A small margin leaves users short after the first pass; the second gives them exactly the
    lists of one pass asking every user for k + the most rated (None: ranking.margin's choice)."""
    from recommender.spark.df import top_lists

    rows, train, model = small_model
    exact, _, _, one = top_lists(model, train, 4, exclude_rated=True, margin=most_rated(rows))
    lists, _, _, passes = top_lists(model, train, 4, exclude_rated=True, margin=margin)
    assert one.second_users == 0
    if margin is not None:
        assert passes.margin == margin and passes.second_users > 5 and passes.second_asked == most_rated(rows)
    assert {r["user"]: r["items"] for r in lists.collect()} == {r["user"]: r["items"] for r in exact.collect()}


@pytest.fixture(scope="module")
def small_rdd_model(spark, small_model):
    """MLlib's RDD ALS on the same ratings: (ratings, train RDD, model)."""
    from pyspark.mllib.recommendation import ALS, Rating

    rows = small_model[0]
    train = spark.sparkContext.parallelize([Rating(u, i, r) for (u, i), r in rows.items()], 2)
    return rows, train, ALS.train(train, rank=3, iterations=5, seed=1)


@pytest.mark.spark
@pytest.mark.parametrize("margin", [0, 2, None])
def test_rdd_lists_in_two_passes_are_the_brute_force_ones(small_rdd_model, margin: int | None) -> None:
    """recommendProductsForUsers(k + margin), then the same on a model of just the users left short:
    each user's k best unrated items by the factors, the same as one pass."""
    from recommender.spark.rdd import top_lists

    rows, train, model = small_rdd_model
    lists, _, most, passes = top_lists(model, train, 4, exclude_rated=True, margin=margin)
    exact, _, _, one = top_lists(model, train, 4, exclude_rated=True, margin=most)
    assert most == most_rated(rows) and one.second_users == 0
    if margin is not None:
        assert passes.second_users > 5 and passes.second_asked == most
    users = {u: np.array(f) for u, f in model.userFeatures().collect()}
    items = {i: np.array(f) for i, f in model.productFeatures().collect()}
    found = dict(lists.collect())
    assert found == dict(exact.collect()) and set(found) == set(users)
    for user, listed in found.items():
        unrated = [i for i in items if (user, i) not in rows]
        assert listed == sorted(unrated, key=lambda i: -float(users[user] @ items[i]))[:4]


@pytest.mark.spark
@pytest.mark.torch
def test_torch_top_k_gives_mllibs_lists_on_mllibs_factors(small_model) -> None:
    """The torch engine's recommend step (recommender/tensor/topk.py) on MLlib's own factors and
    training ratings returns MLlib's lists, rated items left out."""
    import torch

    from recommender.spark.df import top_lists
    from recommender.tensor.als import encode, make_side, rated
    from recommender.tensor.topk import top_k

    rows, train, model = small_model
    users = model.userFactors.orderBy("id").collect()
    items = model.itemFactors.orderBy("id").collect()
    user_ids, item_ids = np.array([r["id"] for r in users]), np.array([r["id"] for r in items])
    pairs = np.array([(u, i) for u, i in rows if u in set(user_ids) and i in set(item_ids)])
    side = make_side(torch.from_numpy(np.searchsorted(user_ids, pairs[:, 0]).astype(np.int32)),
                     torch.from_numpy(np.searchsorted(item_ids, pairs[:, 1]).astype(np.int32)),
                     encode(torch.ones(len(pairs))), len(user_ids), len(item_ids))
    found = top_k(torch.tensor([r["features"] for r in users]), torch.tensor([r["features"] for r in items]), 4,
                  rated(side))
    ours = {int(u): list(item_ids[found.items[n].numpy()]) for n, u in enumerate(user_ids)}
    theirs = {r["user"]: r["items"] for r in top_lists(model, train, 4, exclude_rated=True)[0].collect()}
    assert ours == theirs
