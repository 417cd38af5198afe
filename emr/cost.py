"""What a cluster costs: instance-hours times a price table (prices.json, or the user's)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emr.spec import HERE, ClusterOptions
from recommender.launch import registry

PRICES = HERE / "prices.json"
STARTUP_HOURS = 0.2  # provisioning and bootstrap, billed like any other minute
GENERATION_RATINGS_PER_CORE_S = 1e6  # a fractal expansion into Parquet and CSV parts: measured here, see README


class PriceError(ValueError):
    """A price table without the instance type asked for, or not a price table at all."""


@dataclass(frozen=True)
class Estimate:
    instance_hours: float
    usd_per_hour: float
    hours: float
    usd: float
    currency: str
    prices: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        return (f"estimated cost: {self.usd:.2f} {self.currency} "
                f"({self.hours:.2f} h at {self.usd_per_hour:.2f} {self.currency}/h, "
                f"{self.instance_hours:.1f} instance-hours; prices from {self.prices})")


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    try:
        table = json.loads(path.read_text())
        table["instances"].items()
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise PriceError(f"{path}: not a price table ({error})") from None
    return table


def hourly(options: ClusterOptions, table: dict[str, Any]) -> float:
    """The cluster's price per hour: EC2 plus the EMR uplift for every node, spot discounted."""
    instances = table["instances"]
    assert isinstance(instances, dict)
    total = 0.0
    for kind, count in ((options.master_type, 1), (options.worker_type, options.core_count)):
        if kind not in instances:
            raise PriceError(f"no price for {kind}; add it to a price table and pass --prices")
        price = instances[kind]
        ec2 = price["ec2"] * (float(table.get("spot_fraction", 1.0)) if options.market == "SPOT" else 1.0)
        total += count * (ec2 + price["emr"])
    return total


def estimate(options: ClusterOptions, run_hours: float, prices: Path = PRICES) -> Estimate:
    """The cost of running the cluster for `run_hours` plus its start-up."""
    table = load_prices(prices)
    per_hour = hourly(options, table)
    hours = STARTUP_HOURS + run_hours
    nodes = 1 + options.core_count
    return Estimate(round(nodes * hours, 3), round(per_hour, 4), round(hours, 3),
                    round(per_hour * hours, 2), str(table.get("currency", "USD")), str(prices))


def case_hours(impl: str, api: str, ratings: int, cores: int) -> float:
    """A rough time for one case, for the estimate printed before launch.

    The model: 60 s to start a YARN application, plus 9.5 s per million ratings on 2 cores (the
    study's Scala RDD run, 191 s for 20M ratings) scaled ideally with cores, times the
    implementation's measured slowdown against Scala (the registry's `slowdown`).
    """
    per_million = 9.5 * 2 / max(cores, 1) * registry.get(impl).relative_time(api)
    return (60 + per_million * ratings / 1e6) / 3600


def generation_hours(ratings: int, cores: int) -> float:
    """A rough time for generating a fractal expansion on the cluster, one task per block row."""
    return (60 + ratings / (GENERATION_RATINGS_PER_CORE_S * max(cores, 1))) / 3600
