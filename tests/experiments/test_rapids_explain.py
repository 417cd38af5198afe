"""Parsing spark-rapids' explain output into what ran on the GPU, per phase.

Spark cannot run on the lent GPU machine, so the input is the format that spark-rapids documents:
the lines below follow docs/get-started/getting-started-workload-qualification.md (NVIDIA/
spark-rapids PRs #4110, #4322 and #4328: `!Exec <...> cannot run on GPU because ...`,
`!Unsupported operator: <...>`) and driver logs quoted in NVIDIA/spark-rapids issue #3913
(`*Exec <...> will run on GPU`, `@Expression <...> could run on GPU`).
"""

from __future__ import annotations

import pytest

from experiments import rapids_explain

pytestmark = pytest.mark.unit

LOG = """\
ALS_PHASE load begin
26/11/24 04:10:01 WARN GpuOverrides:
*Exec <HashAggregateExec> will run on GPU
  *Expression <AggregateExpression> count(1) will run on GPU
  *Exec <ShuffleExchangeExec> will run on GPU
    *Partitioning <SinglePartition$> will run on GPU
    *Exec <FileSourceScanExec> will run on GPU
ALS_PHASE load end
ALS_PHASE predict begin
26/11/24 04:10:09 WARN GpuOverrides:
!Exec <ProjectExec> cannot run on GPU because not all expressions can be replaced
  !Expression <ScalaUDF> UDF(user#0) cannot run on GPU because neither UDF implemented by class org.apache.spark.ml.recommendation.ALSModel nor the GPU could run it
  @Expression <AttributeReference> user#0 could run on GPU
  !Exec <SortMergeJoinExec> cannot run on GPU because ExistenceJoin(exists#416) currently is not supported
!Unsupported operator: <RowDataSourceScanExec> cannot run on GPU because no GPU enabled version of operator class org.apache.spark.sql.execution.RowDataSourceScanExec could be found
!Exec <ProjectExec> cannot run on GPU because not all expressions can be replaced
*Exec <FilterExec> will run on GPU
ALS_PHASE predict end
some unrelated INFO line with <angle brackets> that will run on GPU maybe
"""


def test_operators_are_attributed_to_their_phase() -> None:
    reports = rapids_explain.parse(LOG.splitlines())
    assert set(reports) == {"load", "predict"}
    load = reports["load"]
    assert load.on_gpu == {"HashAggregateExec": 1, "ShuffleExchangeExec": 1, "FileSourceScanExec": 1}
    assert load.on_cpu == {}
    predict = reports["predict"]
    assert predict.on_gpu == {"FilterExec": 1}
    assert predict.on_cpu == {
        "ProjectExec": ["not all expressions can be replaced"],
        "SortMergeJoinExec": ["ExistenceJoin(exists#416) currently is not supported"],
        "RowDataSourceScanExec": ["no GPU enabled version of operator class "
                                  "org.apache.spark.sql.execution.RowDataSourceScanExec could be found"],
    }
    assert list(predict.expressions_on_cpu) == ["ScalaUDF"]


def test_a_log_without_the_plugin_reports_nothing() -> None:
    assert rapids_explain.parse(["ALS_PHASE fit begin", "26/11/24 INFO SparkContext: Running Spark"]) == {}


def test_only_explain_lines_and_markers_are_kept() -> None:
    kept = rapids_explain.explain_lines(LOG)
    assert kept[0] == "ALS_PHASE load begin"
    assert not any("WARN GpuOverrides" in line or "unrelated" in line for line in kept)
    dropped = ("WARN GpuOverrides", "unrelated", " end")
    assert kept == [line for line in LOG.splitlines() if not any(d in line for d in dropped)]
