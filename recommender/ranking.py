"""Ranking metrics of top-k lists against held-out items, and the most-popular baseline, in numpy.

The definitions are Spark's `org.apache.spark.mllib.evaluation.RankingMetrics` (binary relevance):
precision@k = hits in the first k / k; recall@k = hits / relevant; NDCG@k with gain 1/ln(i + 2)
over the first min(|list|, k) places, ideal over min(|relevant|, k); MAP@k = the sum of precision
at each hit / min(|relevant|, k). The Spark engines call Spark's own; the torch engine calls these,
and a test holds them to Spark's on the same lists. Users evaluated: those with a list and at least
one relevant held-out item (Spark would count a user without relevant items as 0).
"""

from __future__ import annotations

import numpy as np

from recommender.result import Ranking

NO_ITEM = -1  # pads a list shorter than k (a user who rated all but a few items)
PAIR_SHIFT = 2**32  # a (row, item id) pair as one int64 key: row * PAIR_SHIFT + item


def relevant_mask(ratings: np.ndarray, threshold: float | None) -> np.ndarray:
    """Which held-out ratings count as relevant: all (threshold None), or those at least `threshold`."""
    return np.ones(len(ratings), dtype=bool) if threshold is None else ratings >= threshold


def evaluate(lists: np.ndarray, list_users: np.ndarray, held_users: np.ndarray, held_items: np.ndarray,
             k: int) -> Ranking | None:
    """The metrics of `lists` (one row of item ids per user of `list_users`, best first, NO_ITEM
    padded) against the relevant held-out pairs (`held_users`, `held_items`); None if no user has both."""
    if not len(list_users):
        return None
    lists = lists[:, :k]
    order = np.argsort(list_users, kind="stable")
    place = np.searchsorted(list_users[order], held_users).clip(0, max(len(order) - 1, 0))
    keep = (list_users[order][place] == held_users) if len(order) else np.zeros(len(held_users), bool)
    rows = order[place]
    # Each relevant (row, item) pair as one sorted int64 key, row * 2^32 + item (ids are below 2^32):
    # a 1-D unique and a binary search, where a unique over pairs (axis=1) sorts records, several times slower.
    keys = np.unique(rows[keep].astype(np.int64) * PAIR_SHIFT + held_items[keep].astype(np.int64))
    evaluated, relevant = np.unique(keys // PAIR_SHIFT, return_counts=True)
    if not len(evaluated):
        return None
    width = lists.shape[1]
    # A hit: the list's item at (row, place) is one of the row's relevant items.
    cell = np.repeat(np.arange(len(lists), dtype=np.int64), width) * PAIR_SHIFT + lists.reshape(-1)
    found_at = np.searchsorted(keys, cell).clip(max=len(keys) - 1)
    hits = (keys[found_at] == cell).reshape(lists.shape)[evaluated] & (lists[evaluated] != NO_ITEM)
    gains = 1.0 / np.log(np.arange(width) + 2.0)
    ideal = np.cumsum(np.concatenate([[0.0], 1.0 / np.log(np.arange(k) + 2.0)]))[np.minimum(relevant, k)]
    found = np.cumsum(hits, axis=1)
    precision_sum = (hits * found / np.arange(1, width + 1)).sum(axis=1)
    return Ranking(
        k=k,
        users=len(evaluated),
        precision=float((found[:, -1] / k).mean()) if width else 0.0,
        recall=float((found[:, -1] / relevant).mean()) if width else 0.0,
        ndcg=float(((hits * gains).sum(axis=1) / ideal).mean()),
        map=float((precision_sum / np.minimum(relevant, k)).mean()),
    )


def popularity_scores(train_items: np.ndarray, n_items: int) -> np.ndarray:
    """A score per item index that orders items by training count, most rated first, ties by the
    lower index (the lower id): count * n + (n - 1 - index), exact in float64 below 2^53."""
    return popularity_from_counts(np.bincount(train_items, minlength=n_items))


def popularity_from_counts(counts: np.ndarray) -> np.ndarray:
    """`popularity_scores` from each item index's training count (a distributed engine sums them)."""
    n_items = len(counts)
    return counts.astype(np.float64) * n_items + (n_items - 1 - np.arange(n_items, dtype=np.float64))
