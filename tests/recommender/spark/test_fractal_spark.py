"""The Spark generator writes the same bytes as the local loop, resumes, and reads a base from a Hadoop path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from recommender.data import fractal_output as out
from recommender.data.fractal import base_from_frame, parse_fractal, probabilities
from recommender.spark.fractal import read_base, write_rows_on_spark

pytestmark = pytest.mark.spark


def frame(users: int = 60, items: int = 45, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((users, items)) < 0.3)
    return pd.DataFrame({"user": u + 1, "item": i + 1, "rating": rng.integers(1, 6, len(u)).astype(np.float32)})


def parts(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("part-*"))}


def test_spark_writes_the_local_bytes_and_resumes(spark: SparkSession, tmp_path: Path) -> None:
    base = base_from_frame(frame())
    spec = parse_fractal("fractal:tiny:4x3:8")
    keep = probabilities(base, spec.rows, spec.cols)

    def plan(folder: Path) -> out.Plan:
        return out.Plan(spec, base, keep, str(folder), csv=True)

    local = out.write_expansion(plan(tmp_path / "local"), {"path": "tiny"}, out.write_rows_here)
    on_spark = out.write_expansion(
        plan(tmp_path / "spark"), {"path": "tiny"}, lambda p, rows: write_rows_on_spark(spark, p, rows)
    )
    assert parts(tmp_path / "local") == parts(tmp_path / "spark") and local.ratings == on_spark.ratings
    assert (tmp_path / "local" / "ratings.csv").read_bytes() == (tmp_path / "spark" / "ratings.csv").read_bytes()
    assert spark.read.parquet(on_spark.parquet).count() == on_spark.ratings

    before = parts(tmp_path / "spark")
    (tmp_path / "spark" / out.MANIFEST).unlink()
    (tmp_path / "spark" / out.DONE / "part-00002.json").unlink()
    again = out.write_expansion(
        plan(tmp_path / "spark"), {"path": "tiny"}, lambda p, rows: write_rows_on_spark(spark, p, rows)
    )
    assert parts(tmp_path / "spark") == before and again.ratings == local.ratings


def test_base_from_a_hadoop_path(spark: SparkSession, tmp_path: Path) -> None:
    source = frame()
    source.to_csv(tmp_path / "ratings.csv", header=False, index=False)
    base, fingerprint = read_base(spark, f"file://{tmp_path / 'ratings.csv'}")
    expected = base_from_frame(source)
    assert base.nnz == expected.nnz and (base.n_users, base.n_items) == (expected.n_users, expected.n_items)
    order = np.lexsort((base.items, base.users))
    want = np.lexsort((expected.items, expected.users))
    assert np.array_equal(base.ratings[order], expected.ratings[want])
    assert fingerprint["path"] == f"file://{tmp_path / 'ratings.csv'}"
