"""The EMR cluster request: checked-in JSON (specs/) filled in with the user's options."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPECS = HERE / "specs"
REMOTE = HERE / "remote"
DEFAULT_RELEASE = "emr-7.13.0"  # Spark 3.5.6 (Amazon EMR Release Guide, Spark release history)
GPU_FAMILIES = ("g4dn", "g5", "g5g", "g6", "g6e", "gr6", "p3", "p4d", "p4de", "p5", "p5e")
TOOL_TAG = ("created-by", "als-benchmark")


class SpecError(ValueError):
    """Options that cannot make a valid cluster."""


@dataclass(frozen=True)
class ClusterOptions:
    """What a user chooses about a cluster; every default is documented in emr/README.md."""

    gpu: bool = False
    name: str = "als-benchmark"
    release_label: str = DEFAULT_RELEASE
    region: str = "us-east-1"
    master_type: str = "m5.xlarge"
    core_type: str | None = None  # default: m5.2xlarge (CPU) or g4dn.2xlarge (GPU)
    core_count: int = 2
    market: str = "ON_DEMAND"  # or SPOT
    subnet_id: str | None = None
    key_name: str | None = None
    log_uri: str | None = None  # default: s3://BUCKET/PREFIX/logs/
    idle_timeout_s: int = 3600  # auto-termination after this long idle; always set
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def worker_type(self) -> str:
        return self.core_type or ("g4dn.2xlarge" if self.gpu else "m5.2xlarge")


def has_gpu(instance_type: str) -> bool:
    return instance_type.split(".")[0] in GPU_FAMILIES


def _load(name: str) -> dict[str, Any]:
    return json.loads((SPECS / name).read_text())


def _merge_configurations(base: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Configurations by classification; the later file's properties win."""
    merged: dict[str, dict[str, Any]] = {}
    for item in [*base, *extra]:
        current = merged.setdefault(item["Classification"], {"Classification": item["Classification"],
                                                             "Properties": {}})
        current["Properties"] |= item.get("Properties", {})
        if "Configurations" in item:
            current["Configurations"] = item["Configurations"]
    return list(merged.values())


def cluster_request(options: ClusterOptions, code_uri: str) -> dict[str, Any]:
    """The `run_job_flow` arguments for `options`; `code_uri` is the S3 folder of remote/."""
    if options.gpu and not has_gpu(options.worker_type):
        raise SpecError(f"the GPU cluster needs NVIDIA GPU workers; {options.worker_type} has none "
                        f"(GPU families: {', '.join(GPU_FAMILIES)})")
    if options.market not in ("ON_DEMAND", "SPOT"):
        raise SpecError(f"market {options.market!r}: expected ON_DEMAND or SPOT")
    if options.core_count < 1:
        raise SpecError("a cluster needs at least one core node")
    if not options.log_uri or not options.log_uri.startswith("s3://"):
        raise SpecError(f"log URI {options.log_uri!r}: expected s3://BUCKET/PATH")
    request = copy.deepcopy(_load("common.json"))
    bootstrap = [{"Name": "python-deps",
                  "ScriptBootstrapAction": {"Path": f"{code_uri}/python-deps.sh", "Args": []}}]
    if options.gpu:
        gpu = _load("gpu.json")
        request["Configurations"] = _merge_configurations(request["Configurations"], gpu["Configurations"])
        bootstrap.append({"Name": "gpu-cgroups",
                          "ScriptBootstrapAction": {"Path": f"{code_uri}/{gpu['Bootstrap']}", "Args": []}})
    instances: dict[str, Any] = {
        "InstanceGroups": [
            {"Name": "master", "InstanceRole": "MASTER", "Market": options.market,
             "InstanceType": options.master_type, "InstanceCount": 1},
            {"Name": "core", "InstanceRole": "CORE", "Market": options.market,
             "InstanceType": options.worker_type, "InstanceCount": options.core_count},
        ],
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    if options.subnet_id:
        instances["Ec2SubnetId"] = options.subnet_id
    if options.key_name:
        instances["Ec2KeyName"] = options.key_name
    tags = {TOOL_TAG[0]: TOOL_TAG[1], "device": "gpu" if options.gpu else "cpu"} | options.tags
    return request | {
        "Name": options.name,
        "ReleaseLabel": options.release_label,
        "LogUri": options.log_uri,
        "Instances": instances,
        "BootstrapActions": bootstrap,
        "AutoTerminationPolicy": {"IdleTimeout": options.idle_timeout_s},
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }
