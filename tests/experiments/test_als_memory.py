"""The measurement behind emr/sizing.py's rule runs and finds ALS's cached blocks."""

from __future__ import annotations

import re

import pytest

from emr import sizing
from experiments import als_memory

pytestmark = pytest.mark.spark


def test_als_memory_reports_the_cached_bytes_per_rating(movielens_dir: object,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert als_memory.main(["--data", "ml-100k", "--iterations", "2"]) == 0
    out = capsys.readouterr().out
    found = re.search(r"100,000 ratings; peak cached [\d,]+ bytes = ([\d.]+) bytes per rating", out)
    assert found, out
    # Small data carries more per rating (factors, per-block overheads), never less than the rule.
    assert sizing.CACHED_BYTES_PER_RATING * 0.9 < float(found.group(1)) < 10 * sizing.CACHED_BYTES_PER_RATING
    assert "InBlocks" in out and "ratingBlocks" in out
