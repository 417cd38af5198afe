"""Secrets never reach a results file: confs, command arguments and master URLs."""

from __future__ import annotations

import pytest

from experiments.redact import REDACTED, is_secret, redact_command, redact_confs, redact_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("key", [
    "spark.hadoop.fs.s3a.access.key", "spark.hadoop.fs.s3a.secret.key", "spark.ssl.keyPassword",
    "spark.authenticate.secret", "spark.hadoop.fs.s3a.session.token", "apiKey", "GOOGLE_CREDENTIALS",
    "spark.ssl.trustStorePassword", "db_passwd",
])
def test_secret_looking_keys(key: str) -> None:
    assert is_secret(key)


@pytest.mark.parametrize("key", [
    "spark.sql.shuffle.partitions", "spark.executor.memory", "spark.ssl.keyStore", "spark.kerberos.keytab",
    "spark.rapids.sql.enabled", "spark.task.resource.gpu.amount", "spark.master",
])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert not is_secret(key)


def test_confs_lose_secret_values_and_url_passwords() -> None:
    confs = {"spark.hadoop.fs.s3a.secret.key": "abc/123", "spark.sql.shuffle.partitions": "4",
             "spark.eventLog.dir": "s3a://AKIA:wJalr@bucket/logs"}
    assert redact_confs(confs) == {"spark.hadoop.fs.s3a.secret.key": REDACTED, "spark.sql.shuffle.partitions": "4",
                                   "spark.eventLog.dir": f"s3a://AKIA:{REDACTED}@bucket/logs"}


def test_master_urls_lose_user_info_and_secret_query_values() -> None:
    assert redact_url("spark://admin:hunter2@host:7077") == f"spark://admin:{REDACTED}@host:7077"
    assert redact_url("k8s://https://token@api:6443") == f"k8s://https://{REDACTED}@api:6443"
    assert redact_url("spark://host:7077?token=abc&x=1") == f"spark://host:7077?token={REDACTED}&x=1"
    assert redact_url("local[2]") == "local[2]" and redact_url(None) is None
    assert redact_url("yarn") == "yarn"


def test_commands_lose_secrets_wherever_they_sit() -> None:
    cmd = ["spark-submit", "--master", "spark://u:pw@h:7077", "--conf", "spark.hadoop.fs.s3a.secret.key=xyz",
           "--conf", "spark.executor.cores=2", "--password=pw", "ratings.csv"]
    out = redact_command(cmd)
    assert out == ["spark-submit", "--master", f"spark://u:{REDACTED}@h:7077", "--conf",
                   f"spark.hadoop.fs.s3a.secret.key={REDACTED}", "--conf", "spark.executor.cores=2",
                   f"--password={REDACTED}", "ratings.csv"]
    assert not any("xyz" in a or "pw@" in a for a in out)
