"""Launch an EMR cluster, run the grid as steps, collect the results, always tear it down.

Every AWS call goes through boto3 clients made from one session, so the same code talks to AWS
or to a moto server (`endpoint_url`).
"""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from emr.spec import REMOTE, TOOL_TAG, ClusterOptions, cluster_request
from recommender.launch.submit import ROOT

CODE_FOLDERS = ("recommender", "scala/src", "emr/remote")
CODE_FILES = ("scala/build.sh",)
DONE = {"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"}
CLUSTER_GONE = {"TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"}
MAX_STEPS_PER_CALL = 256  # AddJobFlowSteps' own limit
RETRY_DELAYS_S = (2.0, 10.0, 30.0)  # between tries of a poll or a terminate that failed
T = TypeVar("T")


class EmrError(RuntimeError):
    """Anything that stops a run on EMR, said in a line a person can act on."""


@dataclass(frozen=True)
class Storage:
    """The S3 folder that holds one run's code, data, results and logs."""

    bucket: str
    prefix: str

    def uri(self, *parts: str) -> str:
        return "s3://" + "/".join([self.bucket, self.prefix.strip("/"), *parts])

    def key(self, *parts: str) -> str:
        return "/".join([self.prefix.strip("/"), *parts])


def new_prefix() -> str:
    return f"als-benchmark/{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass
class StepRun:
    """A step that was added, and what became of it."""

    name: str
    step_id: str
    args: list[str]  # the command-runner arguments: run_case.sh RESULT_URI spark-submit ...
    state: str = "PENDING"
    started: datetime | None = None
    ended: datetime | None = None
    reason: str = ""

    @property
    def case_id(self) -> str | None:
        """The grid case a step runs (its name is 'CASE round N'); None for the setup step."""
        name, sep, _ = self.name.rpartition(" round ")
        return name if sep else None

    @property
    def result_uri(self) -> str:
        return self.args[2]

    @property
    def command(self) -> list[str]:
        return self.args[3:]


@dataclass
class Aws:
    """The boto3 clients of one region, checked before anything is created."""

    region: str
    endpoint_url: str | None = None
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    def __post_init__(self) -> None:
        known = self.session.get_available_regions("emr")
        if self.region not in known:
            raise EmrError(f"unknown region {self.region!r}: EMR runs in {', '.join(sorted(known))}")
        self.emr = self.session.client("emr", region_name=self.region, endpoint_url=self.endpoint_url)
        self.s3 = self.session.client("s3", region_name=self.region, endpoint_url=self.endpoint_url)
        if self.session.get_credentials() is None:
            raise EmrError("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY (see emr/README.md)")

    def check_bucket(self, bucket: str) -> None:
        try:
            self.s3.head_bucket(Bucket=bucket)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            why = "does not exist" if code in ("404", "NoSuchBucket") else f"cannot be used ({code})"
            raise EmrError(f"S3 bucket {bucket!r} {why}: create it, or name another with --bucket") from None
        except NoCredentialsError:
            raise EmrError("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID") from None


def code_archive(root: Path = ROOT) -> bytes:
    """The code a cluster needs, zipped (sources only: the jar is built on the cluster)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        paths = [p for folder in CODE_FOLDERS for p in sorted((root / folder).rglob("*"))]
        for path in paths + [root / f for f in CODE_FILES]:
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def upload(aws: Aws, storage: Storage, datasets: dict[str, str]) -> dict[str, str]:
    """Put the code, the bootstrap and step scripts and the data sets into S3; the data URIs."""
    aws.s3.put_object(Bucket=storage.bucket, Key=storage.key("code", "code.zip"), Body=code_archive())
    for script in sorted(REMOTE.glob("*.sh")):
        aws.s3.upload_file(str(script), storage.bucket, storage.key("code", script.name))
    uris = {}
    for name, path in datasets.items():
        key = storage.key("data", data_folder(name), Path(path).name)
        aws.s3.upload_file(path, storage.bucket, key)
        uris[name] = f"s3://{storage.bucket}/{key}"
    return uris


def data_folder(name: str) -> str:
    """A data set's folder under the run's `data/` (a data spec's colons are not for S3 keys)."""
    return name.replace(":", "_")


def launch(aws: Aws, options: ClusterOptions, storage: Storage) -> str:
    """Create the cluster (idle auto-termination always set) and return its id."""
    request = cluster_request(options, storage.uri("code"))
    try:
        return aws.emr.run_job_flow(**request)["JobFlowId"]
    except (ClientError, BotoCoreError) as error:
        raise EmrError(f"EMR refused the cluster: {error}") from None


def add_steps(aws: Aws, cluster_id: str, steps: Sequence[dict[str, Any]]) -> list[StepRun]:
    runs = []
    for start in range(0, len(steps), MAX_STEPS_PER_CALL):
        chunk = steps[start : start + MAX_STEPS_PER_CALL]
        ids = aws.emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=list(chunk))["StepIds"]
        runs += [StepRun(step["Name"], step_id, step["HadoopJarStep"]["Args"])
                 for step, step_id in zip(chunk, ids, strict=False)]
    return runs


def existing_steps(aws: Aws, cluster_id: str) -> list[StepRun]:
    """Every step of a cluster, oldest first, for collecting the results of an earlier run."""
    runs = []
    for page in aws.emr.get_paginator("list_steps").paginate(ClusterId=cluster_id):
        runs += [StepRun(s["Name"], s["Id"], s["Config"]["Args"]) for s in page["Steps"]]
    return runs[::-1]


def poll(aws: Aws, cluster_id: str, runs: list[StepRun]) -> None:
    """Refresh every unfinished step's state and its own start and end times."""
    for run in runs:
        if run.state in DONE:
            continue
        status = aws.emr.describe_step(ClusterId=cluster_id, StepId=run.step_id)["Step"]["Status"]
        timeline = status.get("Timeline", {})
        run.state = status["State"]
        run.started, run.ended = timeline.get("StartDateTime"), timeline.get("EndDateTime")
        run.reason = ((status.get("FailureDetails") or {}).get("Reason")
                      or (status.get("StateChangeReason") or {}).get("Message") or "")


def retried(what: str, cluster_id: str, call: Callable[[], T]) -> T:
    """`call`, tried again after each of RETRY_DELAYS_S on an AWS error; then an EmrError naming the cluster."""
    for delay in RETRY_DELAYS_S:
        try:
            return call()
        except (ClientError, BotoCoreError):
            time.sleep(delay)
    try:
        return call()
    except (ClientError, BotoCoreError) as error:
        tries = len(RETRY_DELAYS_S) + 1
        raise EmrError(f"{what} cluster {cluster_id} failed {tries} times: {error}") from error


def wait(aws: Aws, cluster_id: str, runs: list[StepRun], interval_s: float = 30.0,
         progress: Callable[[int, int], None] | None = None, timeout_s: float = 48 * 3600) -> None:
    """Until every step has finished, or the cluster has gone; an AWS error is retried (`retried`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        retried("polling", cluster_id, lambda: poll(aws, cluster_id, runs))
        finished = sum(run.state in DONE for run in runs)
        if progress:
            progress(finished, len(runs))
        if finished == len(runs):
            return
        state = retried("polling", cluster_id, lambda: aws.emr.describe_cluster(ClusterId=cluster_id))[
            "Cluster"]["Status"]["State"]
        if state in CLUSTER_GONE:
            raise EmrError(f"cluster {cluster_id} is {state} with {len(runs) - finished} steps unfinished")
        if time.monotonic() > deadline:
            raise EmrError(f"steps still running after {timeout_s / 3600:.0f} h")
        time.sleep(interval_s)


def read_text(aws: Aws, uri: str) -> str | None:
    """An S3 object's text, or None where there is none."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        return aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except ClientError:
        return None


def terminate(aws: Aws, cluster_id: str) -> None:
    """Terminate a cluster, retrying on AWS errors; if it cannot, say so with the command that can."""
    try:
        retried("terminating", cluster_id, lambda: aws.emr.terminate_job_flows(JobFlowIds=[cluster_id]))
    except EmrError as error:
        raise EmrError(f"{error}; it may still be running: python -m emr terminate {cluster_id}") from error


def ours(aws: Aws, states: Iterable[str] = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")) -> list[dict[str, Any]]:
    """Clusters this tool started (by its tag) that are still up."""
    found = []
    for page in aws.emr.get_paginator("list_clusters").paginate(ClusterStates=list(states)):
        for summary in page["Clusters"]:
            cluster = aws.emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]
            if {"Key": TOOL_TAG[0], "Value": TOOL_TAG[1]} in cluster.get("Tags", []):
                found.append(cluster)
    return found
