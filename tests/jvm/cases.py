"""The JVM implementations that tests/jvm checks, and the subset of them that CI runs a check on.

Scala's RDD job and Java's share the RDD reader (`Loading.settleRatings`) and the RDD top-k
(`Recommend.rdd`), so a check of those paths in CI runs on Java's RDD and Scala's DataFrame job;
Scala's RDD job runs it under `slow`. In CI it keeps the contract (tests/test_contract.py: MLlib's
explicit figures from every language to 1e-9) and the implicit parity on ml-100k.
"""

from __future__ import annotations

from typing import Any

import pytest

from recommender.launch import registry
from recommender.launch.registry import Launcher

JVM_CASES = [(impl.name, api) for impl in registry.IMPLEMENTATIONS if impl.launcher is Launcher.JVM
             for api in impl.apis]
SHARED_RDD_PATH = ("scala", "rdd")  # the same RDD reader and top-k as ("java", "rdd")


def cases_in_ci(*slow: tuple[str, str]) -> list[Any]:
    """JVM_CASES as parameters, those in `slow` marked slow; each named impl-api."""
    return [pytest.param(*case, id="-".join(case), marks=[pytest.mark.slow] if case in slow else [])
            for case in JVM_CASES]
