"""The k best items for every user, from the factors, on the factors' device.

One batched matrix product and `torch.topk` per chunk of users, the chunk sized so that its score
matrix stays within a memory budget whatever the number of users. Items a user rated in training
can be excluded (their scores set to -inf before the top-k), the way Spark's
`recommendForAllUsers` does not and most recommenders do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recommender import ranking
from recommender.result import Ranking

CHUNK_BYTES = 256 * 2**20  # one chunk's score matrix


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


def rank_lists(best: TopK, popularity: torch.Tensor, rated: torch.Tensor | None, user_ids: np.ndarray,
               item_ids: np.ndarray, held_users: np.ndarray, held_items: np.ndarray, held_ratings: np.ndarray,
               relevance: float | None, chunk_bytes: int = CHUNK_BYTES) -> tuple[Ranking | None, Ranking | None]:
    """The ranking metrics (recommender/ranking.py) of `best` (rows: `user_ids`) and of the most-popular
    baseline's lists (`top_k` on the `popularity` scores of `ranking.popularity_scores`, rated items
    left out the same way) on the relevant held-out (user id, item id, rating) triples."""
    relevant = ranking.relevant_mask(held_ratings, relevance)
    hu, hi = held_users[relevant], held_items[relevant]
    k = best.items.shape[1]
    device = best.items.device
    ones = torch.ones(len(user_ids), 1, dtype=torch.float64, device=device)
    popular = top_k(ones, popularity.to(device)[:, None], k, rated, chunk_bytes)

    def raw(lists: TopK) -> np.ndarray:  # item ids, NO_ITEM where a list ran out (score -inf)
        found = torch.isfinite(lists.scores).cpu().numpy()
        return np.where(found, item_ids[lists.items.cpu().numpy()], ranking.NO_ITEM)

    return ranking.evaluate(raw(best), user_ids, hu, hi, k), ranking.evaluate(raw(popular), user_ids, hu, hi, k)
