"""The k best items for every user, from the factors, on the factors' device.

One batched matrix product and `torch.topk` per chunk of users, the chunk sized so that its score
matrix stays within a memory budget whatever the number of users. Items a user rated in training
can be excluded (their scores set to -inf before the top-k), the way Spark's
`recommendForAllUsers` does not and most recommenders do.
The most-popular baseline's lists (`most_popular`) are read off the popularity order instead:
one order for every user, so no score matrix at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recommender import ranking
from recommender.result import Ranking

CHUNK_BYTES = 256 * 2**20  # one chunk's score matrix
POPULAR_CHUNK = 2**22  # rated items `most_popular` places at a time (about 50 bytes each)


@dataclass(frozen=True)
class TopK:
    """Per user (rows in the order of the user factors): the k item indices and their scores."""

    items: torch.Tensor  # users x k, int64 indices into the item factors
    scores: torch.Tensor  # users x k, descending


def top_k(users: torch.Tensor, items: torch.Tensor, k: int, rated: torch.Tensor | None = None,
          chunk_bytes: int = CHUNK_BYTES) -> TopK:
    """The `k` highest-scoring items of every user; with `rated` (a users x items sparse CSR
    matrix of training ratings) a user's rated items are left out."""
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, not {k}")
    k = min(k, items.shape[0])
    n_users = users.shape[0]
    chunk = max(1, chunk_bytes // (users.element_size() * max(items.shape[0], 1)))
    out_items = torch.empty(n_users, k, dtype=torch.int64, device=users.device)
    out_scores = torch.empty(n_users, k, dtype=users.dtype, device=users.device)
    crow = rated.crow_indices() if rated is not None else None
    cols = rated.col_indices() if rated is not None else None
    buffer = torch.empty(min(chunk, n_users), items.shape[0], dtype=users.dtype, device=users.device)
    for start in range(0, n_users, chunk):
        stop = min(start + chunk, n_users)
        scores = torch.matmul(users[start:stop], items.T, out=buffer[: stop - start])  # no fresh pages per chunk
        if crow is not None and cols is not None:
            lo, hi = crow[start], crow[stop]  # the chunk's ratings are one slice of the CSR arrays
            counts = crow[start + 1 : stop + 1] - crow[start:stop]
            rows = torch.repeat_interleave(torch.arange(stop - start, device=users.device), counts)
            scores[rows, cols[lo:hi].long()] = float("-inf")
        torch.topk(scores, k, dim=1, out=(out_scores[start:stop], out_items[start:stop]))
    return TopK(out_items, out_scores)


def most_popular(popularity: torch.Tensor, n_users: int, k: int, rated: torch.Tensor | None = None,
                 chunk: int = POPULAR_CHUNK) -> TopK:
    """Every user's `k` most popular items by the `popularity` scores (all distinct, as
    `ranking.popularity_scores` makes them), with `rated` (as `top_k`'s) a user's rated items left out:
    the lists `top_k` gives on those scores, without a users x items score matrix. With a user's rated
    items at places p_0 < p_1 < ... of the popularity order, the j-th unrated place is j plus the number
    of i with p_i - i <= j (p_i - i counts the unrated places before p_i). A list that runs out of items
    ends in -inf scores, as `top_k`'s. Users go `chunk` ratings at a time, so the buffers stay small."""
    n_items, device = popularity.shape[0], popularity.device
    k = min(k, n_items)
    order = torch.argsort(popularity, descending=True)
    wanted = torch.arange(k, device=device)
    places = wanted.repeat(n_users, 1)
    if rated is not None:
        place = torch.empty_like(order)
        place[order] = torch.arange(n_items, device=device)
        crow, cols = rated.crow_indices().long(), rated.col_indices()
        step = max(1, chunk * n_users // max(len(cols), 1))  # users a chunk
        for start in range(0, n_users, step):
            stop = min(start + step, n_users)
            lo, hi = int(crow[start]), int(crow[stop])
            firsts = crow[start:stop] - lo  # each user's first rating in the chunk
            counts = crow[start + 1 : stop + 1] - crow[start:stop]
            rows = torch.repeat_interleave(torch.arange(stop - start, device=device), counts, output_size=hi - lo)
            offset = rows * n_items  # each user's places in a range of their own, so one sort and search serve all
            keyed = torch.sort(place[cols[lo:hi].long()] + offset).values
            within = torch.arange(hi - lo, device=device) - firsts[rows]  # i, each user's rank
            shifted = keyed - within  # offset + p_i - i, sorted within each user's range
            asked = (torch.arange(stop - start, device=device) * n_items)[:, None] + wanted
            below = torch.searchsorted(shifted, asked, right=True) - firsts[:, None]
            places[start:stop] += below
    found = places < n_items
    items = order[places.clamp_max(n_items - 1)]
    scores = torch.where(found, popularity[items], float("-inf"))
    return TopK(items, scores)


def rank_lists(best: TopK, popularity: torch.Tensor, rated: torch.Tensor | None, user_ids: np.ndarray,
               item_ids: np.ndarray, held_users: np.ndarray, held_items: np.ndarray, held_ratings: np.ndarray,
               relevance: float | None) -> tuple[Ranking | None, Ranking | None]:
    """The ranking metrics (recommender/ranking.py) of `best` (rows: `user_ids`) and of the most-popular
    baseline's lists (`most_popular` on the `popularity` scores of `ranking.popularity_scores`, rated items
    left out the same way) on the relevant held-out (user id, item id, rating) triples."""
    relevant = ranking.relevant_mask(held_ratings, relevance)
    hu, hi = held_users[relevant], held_items[relevant]
    k = best.items.shape[1]
    popular = most_popular(popularity.to(best.items.device), len(user_ids), k, rated)

    def raw(lists: TopK) -> np.ndarray:  # item ids, NO_ITEM where a list ran out (score -inf)
        found = torch.isfinite(lists.scores).cpu().numpy()
        return np.where(found, item_ids[lists.items.cpu().numpy()], ranking.NO_ITEM)

    return ranking.evaluate(raw(best), user_ids, hu, hi, k), ranking.evaluate(raw(popular), user_ids, hu, hi, k)
