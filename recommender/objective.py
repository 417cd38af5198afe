"""The ALS objectives in plain numpy, for factors from any engine (no torch needed).

The reference the tests use to compare MLlib's factors with ours: both fit the same objective, so the
one whose factors score lower fits it better, whatever their random starts. Explicit (MLlib's "ALS-WR"):
sum_observed (r - x_u . y_i)^2 + reg * (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2). Implicit (MLlib's
implicitPrefs): sum_all_pairs c (p - x_u . y_i)^2 + reg * (sum_u n+_u |x_u|^2 + sum_i n+_i |y_i|^2), with
p = 1 where r > 0 (else 0, and 0 unrated), c = 1 + alpha |r| (1 unrated), n+ the count of ratings > 0.
"""

from __future__ import annotations

import numpy as np

CHUNK = 2**18  # rated pairs gathered at a time, in float64


def objective_numpy(users: np.ndarray, items: np.ndarray, user_idx: np.ndarray, item_idx: np.ndarray,
                    ratings: np.ndarray, reg: float, implicit: bool, alpha: float) -> float:
    """The objective of factor rows `users` and `items` on the ratings at (`user_idx`, `item_idx`), each pair
    once, in float64. For implicit, the unrated pairs' sum_all (x . y)^2 is trace((X^T X)(Y^T Y)) plus each
    rated pair's correction, so no users x items matrix is formed."""
    x, y = users.astype(np.float64), items.astype(np.float64)
    r = ratings.astype(np.float64)
    fitted = float(((x.T @ x) * (y.T @ y)).sum()) if implicit else 0.0
    for start in range(0, len(r), CHUNK):
        part = slice(start, start + CHUNK)
        score = np.einsum("ij,ij->i", x[user_idx[part]], y[item_idx[part]])
        if implicit:
            confidence = 1 + alpha * np.abs(r[part])
            fitted += float((confidence * ((r[part] > 0) - score) ** 2 - score**2).sum())
        else:
            fitted += float(((r[part] - score) ** 2).sum())
    counted = r > 0 if implicit else np.ones(len(r), bool)
    n_users = np.bincount(user_idx[counted], minlength=len(x))
    n_items = np.bincount(item_idx[counted], minlength=len(y))
    return fitted + reg * float(n_users @ (x**2).sum(1) + n_items @ (y**2).sum(1))
