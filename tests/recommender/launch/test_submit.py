"""recommender/launch/submit.py: the confs a local master gets when the user sets none."""

from __future__ import annotations

import pytest

from recommender.launch.submit import SHUFFLE_PARTITIONS, local_confs

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("master", "partitions"), [("local[2]", "4"), ("local[8,3]", "16"), ("local", "2")])
def test_a_local_master_gets_two_shuffle_partitions_a_core(master: str, partitions: str) -> None:
    assert local_confs(master, {"spark.executor.cores": "1"}) == {SHUFFLE_PARTITIONS: partitions,
                                                                  "spark.executor.cores": "1"}


@pytest.mark.parametrize("master", ["local[*]", "spark://10.0.0.1:7077", "yarn"])
def test_unknown_cores_keep_sparks_default(master: str) -> None:
    assert local_confs(master, {}) == {}


def test_the_users_own_setting_wins() -> None:
    assert local_confs("local[2]", {SHUFFLE_PARTITIONS: "200"}) == {SHUFFLE_PARTITIONS: "200"}
