"""`python -m experiments.recommend_bench [--data synthetic:ml-20m]`: top-k for every user, MLlib's
`recommendForAllUsers` against the torch engine's `top_k`, on the same factors in the same run.

MLlib's DataFrame ALS is fitted once (a few iterations: only the factors' shape matters to the
timing); its `recommendForAllUsers(k)` is forced by a no-op write and timed, then the torch engine's
batched matrix product and `topk` (recommender/tensor/topk.py) runs on the same factors, with the
user's rated items included (the work MLlib's call does) and left out (the engine's default). The
lists are compared user by user. Prints one line per measurement and the agreement.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.recommend_bench", description=__doc__)
    parser.add_argument("--data", default="synthetic:ml-20m")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    import torch
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    from recommender.data.columns import ITEM, RATING, USER
    from recommender.data.sources import prepare
    from recommender.spark.config import SessionConfig
    from recommender.spark.session import spark_session
    from recommender.tensor.topk import top_k

    if args.threads:
        torch.set_num_threads(args.threads)
    prepared = prepare(args.data)
    path = prepared.input_for(reads_parquet=True)
    config = SessionConfig(master=args.master, driver_memory=args.driver_memory,
                           confs={"spark.sql.shuffle.partitions": "8"})
    with spark_session(config) as spark:
        ratings = spark.read.parquet(path) if path.endswith(".parquet") else spark.read.csv(
            path, schema=f"{USER} int, {ITEM} int, {RATING} float")
        started = time.perf_counter()
        model = ALS(rank=args.rank, maxIter=args.iterations, regParam=0.1, seed=42, userCol=USER, itemCol=ITEM,
                    ratingCol=RATING).fit(ratings)
        model.userFactors.count()
        print(f"fit: MLlib DataFrame ALS, rank {args.rank}, {args.iterations} iterations: "
              f"{time.perf_counter() - started:.1f} s (not compared)")

        started = time.perf_counter()
        recs = model.recommendForAllUsers(args.k).cache()
        recs.write.format("noop").mode("overwrite").save()
        mllib_s = time.perf_counter() - started
        users_df = pd.DataFrame(model.userFactors.orderBy("id").toPandas())
        items_df = pd.DataFrame(model.itemFactors.orderBy("id").toPandas())
        mllib = {int(r[USER]): [int(i) for i in r["items"]]
                 for r in recs.select(USER, F.col("recommendations")[ITEM].alias("items")).toLocalIterator()}
        pairs = pd.DataFrame(ratings.select(USER, ITEM).toPandas())

    user_ids, item_ids = users_df["id"].to_numpy(), items_df["id"].to_numpy()
    users = torch.tensor(np.stack(users_df["features"].to_numpy()), dtype=torch.float32)
    items = torch.tensor(np.stack(items_df["features"].to_numpy()), dtype=torch.float32)
    print(f"MLlib recommendForAllUsers({args.k}), {len(user_ids):,} users x {len(item_ids):,} items "
          f"({args.master}): {mllib_s:.2f} s, {len(user_ids) / mllib_s:,.0f} users/s")

    best = None
    for label, rated in (("rated included", None), ("rated left out", _rated(pairs, user_ids, item_ids))):
        started = time.perf_counter()
        found = top_k(users, items, args.k, rated)
        seconds = time.perf_counter() - started
        best = found if rated is None else best
        print(f"torch top_k({args.k}), {label}, {torch.get_num_threads()} threads: {seconds:.2f} s, "
              f"{len(user_ids) / seconds:,.0f} users/s")
    assert best is not None
    ours = item_ids[best.items.numpy()]
    same = sum(set(ours[n]) == set(mllib[int(u)]) for n, u in enumerate(user_ids))
    print(f"same top-{args.k} set as MLlib (rated included, same factors): {same:,} of {len(user_ids):,} users "
          f"({same / len(user_ids):.2%}); the rest differ by float rounding at near-ties")
    return 0


def _rated(pairs: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> torch.Tensor:
    """The training pairs as the users x items CSR indicator the torch engine leaves out (its own `make_side`)."""
    import torch

    from recommender.data.columns import ITEM, USER
    from recommender.tensor.als import encode, make_side, rated

    rows = torch.from_numpy(np.searchsorted(user_ids, pairs[USER].to_numpy()).astype(np.int32))
    cols = torch.from_numpy(np.searchsorted(item_ids, pairs[ITEM].to_numpy()).astype(np.int32))
    return rated(make_side(rows, cols, encode(torch.ones(len(rows))), len(user_ids), len(item_ids)))


if __name__ == "__main__":
    sys.exit(main())
