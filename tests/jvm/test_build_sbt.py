"""scala/build.sbt, for sbt users: its Scala versions match the Spark this suite runs on."""

from __future__ import annotations

import re
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.unit
SBT = (ROOT / "scala" / "build.sbt").read_text()


def test_scala_version_is_the_one_spark_ships() -> None:
    spec = find_spec("pyspark")
    assert spec is not None and spec.origin is not None
    shipped = sorted(Path(spec.origin).parent.glob("jars/scala-library-*.jar"))
    assert shipped, "pyspark ships no scala-library jar"
    version = shipped[0].stem.removeprefix("scala-library-")
    assert re.search(rf'^scalaVersion := "{re.escape(version)}"$', SBT, re.M)
    cross = re.search(r"^crossScalaVersions := Seq\((.*)\)$", SBT, re.M)
    assert cross is not None
    versions = re.findall(r'"(2\.1[23]\.\d+)"', cross.group(1))
    assert {v[:4] for v in versions} == {"2.12", "2.13"} and version in versions


def test_spark_is_provided_and_syntax_is_balanced() -> None:
    deps = re.findall(r'"org\.apache\.spark" %% "(spark-\w+)" % sparkVersion % "provided"', SBT)
    assert sorted(deps) == ["spark-core", "spark-mllib", "spark-sql"]
    code = re.sub(r"//.*", "", SBT)
    assert code.count("(") == code.count(")") and code.count('"') % 2 == 0
