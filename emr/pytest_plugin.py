"""pytest options and fixtures for the `emr` tests: moto in server mode, or real AWS when asked.

    pytest -m emr                                             # moto server on 127.0.0.1
    pytest -m "emr and not gpu" --aws-bucket my-bucket --aws-region eu-west-1   # real AWS: costs money
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # boto3 is imported by the fixtures only: the suite's other tests run without it
    from emr.launcher import Aws


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("emr", "AWS EMR (default: a moto server; real AWS with --aws-bucket)")
    group.addoption("--aws-bucket", default=None, help="S3 bucket on real AWS: runs the emr tests there")
    group.addoption("--aws-region", default="us-east-1")
    group.addoption("--aws-profile", default=None, help="AWS credentials profile (real AWS)")
    group.addoption("--emr-grid", default="study", help="grid to run on EMR (real AWS only)")
    group.addoption("--emr-core-type", default=None, help="core nodes' instance type")
    group.addoption("--emr-core-count", type=int, default=2)
    group.addoption("--emr-subnet", default=None)
    group.addoption("--emr-keep", action="store_true", help="leave the cluster running afterwards")


EMR_RESULTS = pytest.StashKey[list]()


def record_emr_results(config: pytest.Config, document: dict) -> None:
    """Keep a cluster's results so that --benchmark-json carries them (see the hook below)."""
    config.stash.setdefault(EMR_RESULTS, []).append(document)


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict) -> None:
    """Put the EMR cases, timed by the cluster's step timeline, into pytest-benchmark's JSON."""
    for document in config.stash.get(EMR_RESULTS, []):
        output_json["benchmarks"].extend(document["benchmarks"])
        output_json["machine_info"]["als"] = document["machine_info"]["als"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def aws_endpoint(pytestconfig: pytest.Config) -> Iterator[str | None]:
    """None for real AWS (--aws-bucket given); else the URL of a moto server started here."""
    if pytestconfig.getoption("--aws-bucket"):
        yield None
        return
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(pytestconfig: pytest.Config, aws_endpoint: str | None) -> Aws:
    import boto3

    from emr.launcher import Aws

    region = pytestconfig.getoption("--aws-region")
    if aws_endpoint is None:
        return Aws(region, None, boto3.session.Session(profile_name=pytestconfig.getoption("--aws-profile")))
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return Aws(region, aws_endpoint, session)


@pytest.fixture
def bucket(pytestconfig: pytest.Config, aws: Aws, aws_endpoint: str | None) -> str:
    if aws_endpoint is None:
        return pytestconfig.getoption("--aws-bucket")
    name = f"als-test-{_free_port()}"
    aws.s3.create_bucket(Bucket=name)
    return name
