"""The EMR launcher against moto in server mode (or real AWS with --aws-bucket).

moto accepts the API calls but runs nothing, so a simulator plays the cluster: it moves each step
to COMPLETED (or FAILED) with a start and end time and writes what `run_case.sh` would write to
S3, a result line made by the same code as a real run's.
"""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from conftest import ROOT
from emr import launcher, run, sizing, spec, steps
from emr.launcher import Aws, EmrError, Storage, code_archive
from emr.spec import ClusterOptions, SpecError
from experiments import grid
from experiments.grid import Case
from recommender.data.fractal import parse_fractal
from recommender.params import ALSParams
from recommender.result import Counts, Metrics, RunResult, Runtime, SparkRuntime

pytestmark = pytest.mark.emr

CASES = [Case("ml-100k", "cpu", "python", "rdd", 2), Case("ml-100k", "cpu", "scala", "rdd", 2)]


@pytest.fixture(autouse=True)
def _moto_only(aws_endpoint: str | None) -> None:
    if aws_endpoint is None:
        pytest.skip("these tests drive a simulated cluster; on real AWS use the CLI (emr/README.md)")


@pytest.fixture
def ratings_csv(tmp_path: Path) -> str:
    path = tmp_path / "ratings.csv"
    path.write_text("1,1,4.0\n1,2,3.0\n2,1,5.0\n")
    return str(path)


def plan(ratings_csv: str, rounds: int = 2, cases: list[Case] = CASES, gpu: bool = False) -> run.GridPlan:
    catalogue = grid.load()
    return run.GridPlan(cases, rounds, catalogue.params, catalogue.devices["gpu" if gpu else "cpu"],
                        {"ml-100k": ratings_csv}, {"ml-100k": 100_000})


def options(bucket: str, gpu: bool = False) -> ClusterOptions:
    return ClusterOptions(gpu=gpu, log_uri=f"s3://{bucket}/logs/", subnet_id="subnet-123",
                          key_name="key", tags={"team": "bench"})


class Cluster:
    """Plays the EMR cluster behind moto: finishes steps and writes their S3 output."""

    def __init__(self, aws: Aws, fail: tuple[str, ...] = (), interrupt: bool = False,
                 signum: int | None = None) -> None:
        self.aws, self.fail, self.interrupt, self.signum = aws, fail, interrupt, signum
        self.thread = threading.Thread(target=self.run, daemon=True)

    def backend_cluster(self):
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.emr.models import emr_backends

        clusters = emr_backends[DEFAULT_ACCOUNT_ID][self.aws.region].clusters
        live = [c for c in clusters.values() if c.state not in ("TERMINATED",) and c.steps]
        return live[-1] if live else None

    def run(self) -> None:
        deadline = time.monotonic() + 30
        while (cluster := self.backend_cluster()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if cluster is None:
            return
        if self.interrupt:
            _thread.interrupt_main()  # what Ctrl-C does
            return
        if self.signum is not None:
            os.kill(os.getpid(), self.signum)  # a real signal to this process, as a closed terminal sends
            return
        start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        for n, step in enumerate(cluster.steps):
            step.start_date_time = start + timedelta(minutes=n)
            step.end_date_time = step.start_date_time + timedelta(seconds=40 + n)
            if step.name.startswith(("setup", "generate")):
                step.state = "COMPLETED"
                continue
            case_id = step.name.rsplit(" round ", 1)[0]
            if case_id in self.fail:
                step.state, step.last_state_change_reason = "FAILED", "Step failed with exitCode 1"
                continue
            dest = step.args[2]
            bucket, _, key = dest[len("s3://"):].partition("/")
            impl, api = case_id.split("-")[:2]
            result = RunResult(impl, api, "ml-100k", "s3://x/ratings.csv", 1000, asdict(ALSParams(blocks=4)),
                               Counts(3, 0, 2, 2, 3, 0, 3, 0), Metrics(0.1 + n / 1000),
                               {"load": 1.0, "fit": 2.0, "predict": 1.0, "evaluate": 1.0, "total": 5.0},
                               Runtime(spark=SparkRuntime("3.5.6-amzn-2", "yarn", f"application_{n}", 4)), "")
            self.aws.s3.put_object(Bucket=bucket, Key=f"{key}/stdout.txt", Body=result.to_line())
            self.aws.s3.put_object(Bucket=bucket, Key=f"{key}/stderr.txt", Body="ALS_PHASE load begin\n")
            step.state = "COMPLETED"


def cluster_state(aws: Aws, cluster_id: str) -> str:
    return aws.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]


def capture_requests(aws: Aws) -> dict[str, list[dict]]:
    """The exact parameters of every RunJobFlow and AddJobFlowSteps call, as boto3 sends them."""
    seen: dict[str, list[dict]] = {"RunJobFlow": [], "AddJobFlowSteps": []}

    def record(params: dict, model, **_: object) -> None:
        seen.setdefault(model.name, []).append(params)

    aws.emr.meta.events.register("provide-client-params.emr.*", record)
    return seen


@pytest.mark.parametrize("gpu", [False, True])
def test_the_grid_runs_as_steps_and_comes_back_as_benchmark_json(
        aws: Aws, bucket: str, ratings_csv: str, tmp_path: Path, gpu: bool) -> None:
    calls = capture_requests(aws)
    storage = Storage(bucket, "runs/one")
    simulator = Cluster(aws)
    simulator.thread.start()
    out = run.run_grid(aws, options(bucket, gpu), storage, plan(ratings_csv, gpu=gpu), tmp_path / "emr.json",
                       interval_s=0.05)
    simulator.thread.join()

    request = calls["RunJobFlow"][0]
    assert request["ReleaseLabel"] == spec.DEFAULT_RELEASE and request["LogUri"] == f"s3://{bucket}/logs/"
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    assert {"Key": "created-by", "Value": "als-benchmark"} in request["Tags"]
    groups = {g["InstanceRole"]: g for g in request["Instances"]["InstanceGroups"]}
    assert groups["CORE"]["InstanceType"] == ("g4dn.2xlarge" if gpu else "m5.2xlarge")
    assert request["Instances"]["Ec2SubnetId"] == "subnet-123"
    confs = {c["Classification"]: c for c in request["Configurations"]}
    bootstraps = [b["Name"] for b in request["BootstrapActions"]]
    if gpu:
        assert confs["spark"]["Properties"] == {"enableSparkRapids": "true"}
        assert confs["yarn-site"]["Properties"]["yarn.resource-types"] == "yarn.io/gpu"
        assert confs["capacity-scheduler"]["Properties"]["yarn.scheduler.capacity.resource-calculator"] \
            .endswith("DominantResourceCalculator")
        assert confs["spark-defaults"]["Properties"]["spark.plugins"] == "com.nvidia.spark.SQLPlugin"
        assert confs["spark-defaults"]["Properties"]["spark.executor.resource.gpu.discoveryScript"]
        assert [c["Classification"] for c in confs["container-executor"]["Configurations"]] == ["gpu", "cgroups"]
        assert bootstraps == ["python-deps", "gpu-cgroups"]
    else:
        assert "spark" not in confs and "spark.plugins" not in confs["spark-defaults"]["Properties"]
        assert bootstraps == ["python-deps"]

    # Uploads: code (sources, not the jar), scripts, data.
    keys = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket, Prefix="runs/one/")["Contents"]}
    assert {"runs/one/code/code.zip", "runs/one/code/setup.sh", "runs/one/code/run_case.sh",
            "runs/one/code/gpu-cgroups.sh", "runs/one/data/ml-100k/ratings.csv"} <= keys

    # Steps: setup first, then one per case and round, each a spark-submit with N executor cores.
    steps = [s for call in calls["AddJobFlowSteps"] for s in call["Steps"]]
    setup = steps[0]["HadoopJarStep"]["Args"][2]
    assert steps[0]["ActionOnFailure"] == "CANCEL_AND_WAIT" and "setup.sh" in setup and "code.zip" in setup
    assert [s["Name"] for s in steps[1:]] == [f"{c.id} round {r}" for c in CASES for r in range(2)]
    args = steps[1]["HadoopJarStep"]["Args"]
    assert args[:2] == ["bash", "/home/hadoop/als/emr/remote/run_case.sh"]
    submit = args[3:]
    assert submit[:3] == ["spark-submit", "--master", "yarn"]
    assert submit[submit.index("--num-executors") + 1] == "1" and submit[submit.index("--executor-cores") + 1] == "2"
    assert submit[submit.index("--executor-memory") + 1] == ("21g")  # a 32 GiB node's YARN share, less overhead
    assert f"s3://{bucket}/runs/one/data/ml-100k/ratings.csv" in submit
    gpu_amount = [a for a in submit if a.startswith("spark.task.resource.gpu.amount=")]
    assert gpu_amount == (["spark.task.resource.gpu.amount=0.5"] if gpu else [])

    # Results: valid pytest-benchmark JSON, timed by the steps' own timeline (40 s + n).
    document = json.loads(out.read_text())
    assert [b["extra_info"]["case"]["impl"] for b in document["benchmarks"]] == ["python", "scala"]
    first = document["benchmarks"][0]
    assert first["stats"]["rounds"] == 2 and first["stats"]["min"] == 41.0 and first["stats"]["max"] == 42.0
    assert first["extra_info"]["emr"]["cluster_id"] == document["machine_info"]["als"]["cluster_id"]
    assert document["machine_info"]["als"]["cost"]["usd"] > 0
    tool = Path(sys.executable).parent / "pytest-benchmark"
    assert subprocess.run([str(tool), "compare", str(out)], capture_output=True).returncode == 0
    assert cluster_state(aws, document["machine_info"]["als"]["cluster_id"]) == "TERMINATED"


def test_a_failed_step_keeps_the_finished_cases_and_terminates(
        aws: Aws, bucket: str, ratings_csv: str, tmp_path: Path) -> None:
    simulator = Cluster(aws, fail=(CASES[1].id,))
    simulator.thread.start()
    out = tmp_path / "emr.json"
    with pytest.raises(EmrError, match=r"2 of 5 steps did not complete \(scala-rdd-cpu-2c-ml-100k round 0: "
                                       r"FAILED Step failed with exitCode 1"):
        run.run_grid(aws, options(bucket), Storage(bucket, "runs/failed"), plan(ratings_csv), out,
                     interval_s=0.05)
    document = json.loads(out.read_text())
    assert [b["extra_info"]["case"]["impl"] for b in document["benchmarks"]] == ["python"]
    assert cluster_state(aws, document["machine_info"]["als"]["cluster_id"]) == "TERMINATED"


@pytest.fixture
def python_ctrl_c() -> Iterator[None]:
    """Python's own Ctrl-C handler, also where this process inherited SIGINT as ignored (a job started
    in the background): `interrupt_main` does nothing then, and the grid would poll forever."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_terminates_the_cluster(aws: Aws, bucket: str, ratings_csv: str, tmp_path: Path,
                                      python_ctrl_c: None) -> None:
    calls = capture_requests(aws)
    responses: list[str] = []
    aws.emr.meta.events.register("after-call.emr.RunJobFlow",
                                 lambda parsed, **_: responses.append(parsed["JobFlowId"]))
    Cluster(aws, interrupt=True).thread.start()
    with pytest.raises(KeyboardInterrupt):
        run.run_grid(aws, options(bucket), Storage(bucket, "runs/ctrl-c"), plan(ratings_csv),
                     tmp_path / "emr.json", interval_s=0.05)
    assert len(calls["RunJobFlow"]) == 1
    assert cluster_state(aws, responses[0]) == "TERMINATED"


def test_a_given_cluster_is_reused_and_left_running(aws: Aws, bucket: str, ratings_csv: str,
                                                    tmp_path: Path) -> None:
    existing = aws.emr.run_job_flow(**spec.cluster_request(options(bucket), f"s3://{bucket}/code"))["JobFlowId"]
    calls = capture_requests(aws)
    Cluster(aws).thread.start()
    out = run.run_grid(aws, options(bucket), Storage(bucket, "runs/reuse"), plan(ratings_csv, rounds=1),
                       tmp_path / "emr.json", cluster_id=existing, interval_s=0.05)
    assert calls["RunJobFlow"] == [] and cluster_state(aws, existing) != "TERMINATED"
    assert existing in [c["Id"] for c in launcher.ours(aws)]  # found by its tag

    # The results can be collected again later from the cluster's steps alone.
    again = json.loads(run.fetch(aws, options(bucket), existing, tmp_path / "again.json").read_text())
    first = json.loads(out.read_text())
    assert [b["stats"]["mean"] for b in again["benchmarks"]] == [b["stats"]["mean"] for b in first["benchmarks"]]
    assert again["benchmarks"][0]["extra_info"]["confs"]["spark.sql.shuffle.partitions"] == "4"
    aws.emr.terminate_job_flows(JobFlowIds=[existing])
    assert existing not in [c["Id"] for c in launcher.ours(aws)]


def test_bad_input_is_refused_before_anything_starts(aws: Aws, bucket: str, ratings_csv: str,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     aws_endpoint: str) -> None:
    calls = capture_requests(aws)
    with pytest.raises(SpecError, match=r"m5\.2xlarge has none"):
        run.run_grid(aws, ClusterOptions(gpu=True, core_type="m5.2xlarge", log_uri=f"s3://{bucket}/l/"),
                     Storage(bucket, "runs/bad"), plan(ratings_csv), tmp_path / "x.json")
    with pytest.raises(EmrError, match="S3 bucket 'no-such-bucket' does not exist"):
        run.run_grid(aws, options("no-such-bucket"), Storage("no-such-bucket", "p"), plan(ratings_csv),
                     tmp_path / "x.json")
    assert calls["RunJobFlow"] == []
    with pytest.raises(EmrError, match="unknown region 'mars-north-1'"):
        Aws("mars-north-1", aws_endpoint, aws.session)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(EmrError, match="no AWS credentials"):
        Aws("us-east-1", aws_endpoint, boto3.session.Session())


def test_the_code_archive_holds_sources_not_builds() -> None:
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(code_archive())).namelist()
    assert "recommender/entry.py" in names and "scala/build.sh" in names and "emr/remote/run_case.sh" in names
    assert any(n.startswith("scala/src/main/scala/als/") for n in names)
    assert not [n for n in names if n.endswith((".jar", ".pyc"))]
    assert (ROOT / "scala" / "build.sh").read_text().startswith("#!/usr/bin/env bash")


def test_estimates_price_every_node() -> None:
    from emr import cost

    cpu = cost.estimate(ClusterOptions(), run_hours=1.0)
    table = cost.load_prices()["instances"]
    per_hour = sum(table[kind]["ec2"] + table[kind]["emr"] for kind in ("m5.xlarge", "m5.2xlarge", "m5.2xlarge"))
    assert cpu.usd_per_hour == pytest.approx(per_hour) and cpu.hours == pytest.approx(1.2)
    spot = cost.estimate(ClusterOptions(market="SPOT"), run_hours=1.0)
    assert spot.usd < cpu.usd
    with pytest.raises(cost.PriceError, match=r"no price for x9\.huge"):
        cost.estimate(ClusterOptions(core_type="x9.huge"), 1.0)
    assert asdict(cpu)["currency"] == "USD"


def test_a_plan_holds_one_devices_spark_cases_within_the_cluster() -> None:
    gpu = ClusterOptions(gpu=True)
    plan = run.build_plan("study", gpu=True, prepare_data=False, cores=run.cluster_cores(gpu))
    assert run.cluster_cores(gpu) == 16  # 2 x g4dn.2xlarge
    # The executor-cores sweep on one node, and "all" (the engines' MLlib baseline): both nodes.
    assert {c.device for c in plan.cases} == {"gpu"} and {c.cores for c in plan.cases} == {1, 2, 4, 8, 16}
    assert {c.impl for c in plan.cases} <= {"python", "scala", "java"}
    assert plan.ratings["synthetic:ml-20m"] == 20_000_263 and plan.datasets == {} and plan.expansions == {}
    assert run.build_plan("study", gpu=False, prepare_data=False, cores=4).rounds == 3


def test_a_case_past_one_node_spreads_over_whole_nodes_with_their_memory() -> None:
    node = sizing.node(ClusterOptions(core_type="r5.4xlarge"))
    assert (node.vcpus, node.memory_gib, node.executor_memory_gib) == (16, 128.0, 87)
    cpu = grid.load().devices["cpu"]
    small = steps.case_launch(Case("ml-100k", "cpu", "scala", "rdd", 8), cpu, node=node)
    large = steps.case_launch(Case("ml-100k", "cpu", "scala", "rdd", 64), cpu, node=node)
    assert (small.executors, large.executors, large.executor_memory) == (1, 4, "87g")
    assert steps.case_launch(Case("ml-100k", "cpu", "scala", "rdd", 8), cpu).executor_memory is None


def test_a_grid_with_top_k_has_its_steps_recommend() -> None:
    plan = run.build_plan("gpu", gpu=False, prepare_data=False, cores=4)
    study = run.build_plan("study", gpu=False, prepare_data=False, cores=4)
    assert (plan.top_k, plan.include_rated, study.top_k) == (10, True, 0)
    case = next(c for c in plan.cases if c.impl == "scala")
    command = steps.case_command(case, "s3://b/r.csv", plan.params, steps.case_launch(case, plan.device),
                                 top_k=plan.top_k, include_rated=plan.include_rated)
    assert command[command.index("--top-k") + 1] == "10" and "--include-rated" in command


def _up(aws: Aws, cluster_ids: list[str]) -> list[str]:
    """The clusters among `cluster_ids` still up, as `python -m emr list` would show them."""
    return [c["Id"] for c in launcher.ours(aws) if c["Id"] in cluster_ids]


def _launched(aws: Aws) -> list[str]:
    ids: list[str] = []
    aws.emr.meta.events.register("after-call.emr.RunJobFlow", lambda parsed, **_: ids.append(parsed["JobFlowId"]))
    return ids


def _failing(aws: Aws, operation: str, times: int) -> list[int]:
    """Make the next `times` calls of `operation` fail as a throttled or dropped request would."""
    from botocore.exceptions import ClientError

    calls = [0]

    def fail(**_: object) -> None:
        calls[0] += 1
        if calls[0] <= times:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)

    aws.emr.meta.events.register(f"before-call.emr.{operation}", fail)
    return calls


@pytest.fixture
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))


def test_sighup_terminates_the_cluster(aws: Aws, bucket: str, ratings_csv: str, tmp_path: Path) -> None:
    from experiments.interrupts import STOP_SIGNALS, stop_signals_raise

    assert signal.SIGHUP in STOP_SIGNALS
    launched = _launched(aws)
    cluster = Cluster(aws, signum=signal.SIGHUP)
    with stop_signals_raise():
        try:
            cluster.thread.start()
            with pytest.raises(KeyboardInterrupt, match="SIGHUP"):
                run.run_grid(aws, options(bucket), Storage(bucket, "runs/sighup"), plan(ratings_csv),
                             tmp_path / "emr.json", interval_s=0.05)
        finally:
            cluster.thread.join(timeout=60)  # its signal must land while our handler is installed
    assert len(launched) == 1 and _up(aws, launched) == []


def test_a_poll_that_keeps_failing_is_reported_with_the_cluster_and_terminates(
        aws: Aws, bucket: str, ratings_csv: str, tmp_path: Path, no_retry_wait: None) -> None:
    launched = _launched(aws)
    _failing(aws, "DescribeStep", times=1000)
    with pytest.raises(EmrError, match=r"polling cluster j-\w+ failed 4 times: .*ThrottlingException"):
        run.run_grid(aws, options(bucket), Storage(bucket, "runs/poll"), plan(ratings_csv),
                     tmp_path / "emr.json", interval_s=0.05)
    assert len(launched) == 1 and _up(aws, launched) == []


def test_a_poll_or_terminate_that_fails_briefly_is_retried(
        aws: Aws, bucket: str, ratings_csv: str, tmp_path: Path, no_retry_wait: None) -> None:
    launched = _launched(aws)
    polls = _failing(aws, "DescribeStep", times=2)
    terminations = _failing(aws, "TerminateJobFlows", times=3)
    Cluster(aws).thread.start()
    out = run.run_grid(aws, options(bucket), Storage(bucket, "runs/retry"), plan(ratings_csv, rounds=1),
                       tmp_path / "emr.json", interval_s=0.05)
    assert len(json.loads(out.read_text())["benchmarks"]) == 2
    assert polls[0] > 2 and terminations[0] == 4
    assert len(launched) == 1 and _up(aws, launched) == []


def test_a_terminate_that_keeps_failing_names_the_cluster_and_the_way_to_stop_it(
        aws: Aws, bucket: str, no_retry_wait: None) -> None:
    cluster_id = aws.emr.run_job_flow(**spec.cluster_request(options(bucket), f"s3://{bucket}/code"))["JobFlowId"]
    _failing(aws, "TerminateJobFlows", times=4)
    with pytest.raises(EmrError) as info:
        launcher.terminate(aws, cluster_id)
    assert str(info.value).startswith(f"terminating cluster {cluster_id} failed 4 times")
    assert str(info.value).endswith(f"it may still be running: python -m emr terminate {cluster_id}")
    launcher.terminate(aws, cluster_id)  # the fifth call goes through, as the advice says
    assert _up(aws, [cluster_id]) == []


BILLION = 1_158_641_559  # fractal:ml-20m:16x32's expected ratings from the synthetic ml-20m base


def billion_plan(base_file: str) -> run.GridPlan:
    """The billion grid's plan as `build_plan` makes it, with a small stand-in file for the base."""
    catalogue = grid.load()
    chosen = catalogue.grid("billion")
    cases = [c for c in grid.expand(catalogue, chosen, 32, None, grid.resolve_data, lambda _: BILLION)
             if not c.skip]
    (name,) = {c.data for c in cases}
    base = parse_fractal(name).base
    return run.GridPlan(cases, chosen.rounds, chosen.params, catalogue.devices["cpu"], {base: base_file},
                        {name: BILLION}, expansions={name: base})


def test_a_billion_ratings_are_generated_on_the_cluster_and_read_by_whole_nodes(
        aws: Aws, bucket: str, tmp_path: Path) -> None:
    """The documented EMR run of fractal:ml-20m:16x32: only the base goes up, a step generates the
    expansion with every core, then each case reads its CSV parts over both nodes' executors."""
    base_file = tmp_path / "ratings.parquet"
    base_file.write_bytes(b"PAR1")  # uploaded as is: the simulated cluster never reads it
    plan = billion_plan(str(base_file))
    assert {(c.impl, c.api, c.cores) for c in plan.cases} == {("python", "df", 32), ("scala", "rdd", 32),
                                                               ("scala", "df", 32)}
    (name, base), = plan.expansions.items()
    calls = capture_requests(aws)
    launched = _launched(aws)
    simulator = Cluster(aws)
    simulator.thread.start()
    cluster = ClusterOptions(core_type="r5.4xlarge", core_count=2, log_uri=f"s3://{bucket}/logs/")
    run.run_grid(aws, cluster, Storage(bucket, "runs/b"), plan, tmp_path / "emr.json", interval_s=0.05)
    simulator.thread.join()

    keys = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket, Prefix="runs/b/data/")["Contents"]}
    base_key = f"runs/b/data/{launcher.data_folder(base)}/ratings.parquet"
    assert keys == {base_key}
    groups = {g["InstanceRole"]: g for g in calls["RunJobFlow"][0]["Instances"]["InstanceGroups"]}
    assert (groups["CORE"]["InstanceType"], groups["CORE"]["InstanceCount"]) == ("r5.4xlarge", 2)

    requested = [s for call in calls["AddJobFlowSteps"] for s in call["Steps"]]
    generate = requested[1]
    assert (generate["Name"], generate["ActionOnFailure"]) == (f"generate {name}", "CANCEL_AND_WAIT")
    args = generate["HadoopJarStep"]["Args"]
    out = f"s3://{bucket}/runs/b/data/{launcher.data_folder(name)}"
    spec_on_cluster = f"fractal:s3://{bucket}/{base_key}:16x32:0"
    assert args[-4:] == [f"/home/hadoop/als/{steps.FRACTAL_SCRIPT}", spec_on_cluster, out, "--csv"]
    assert args[args.index("--num-executors") + 1: args.index("--num-executors") + 4] == ["2", "--executor-cores", "16"]
    for step in requested[2:]:
        submit = step["HadoopJarStep"]["Args"][3:]
        assert f"{out}/csv-parts" in submit
        assert submit[submit.index("--num-executors") + 1] == "2"
        assert submit[submit.index("--executor-memory") + 1] == "87g"
    assert [s["Name"] for s in requested[2:]] == [f"{c.id} round 0" for c in plan.cases]
    assert len(launched) == 1 and _up(aws, launched) == []


def test_a_cluster_too_small_for_a_billion_ratings_is_refused_before_anything_starts(
        aws: Aws, bucket: str, tmp_path: Path) -> None:
    launched = _launched(aws)
    small = ClusterOptions(core_count=2, log_uri=f"s3://{bucket}/logs/")  # 2 x m5.2xlarge, 21 GiB heap each
    with pytest.raises(EmrError, match=r"needs about 133 GiB of executor heap .* 2 x m5\.2xlarge give 42 GiB: "
                                       r"use --core-count 7 or a larger --core-type"):
        run.run_grid(aws, small, Storage(bucket, "runs/small"), billion_plan(str(tmp_path / "r.parquet")),
                     tmp_path / "emr.json", interval_s=0.05)
    assert launched == [] and "Contents" not in aws.s3.list_objects_v2(Bucket=bucket, Prefix="runs/small/")
