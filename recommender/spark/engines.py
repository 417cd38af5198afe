"""The Spark engines of the registry, on the engine contract: MLlib's two APIs and torch-spark.

Each takes the active SparkSession (started by `recommender.spark.session`), runs its phases and
returns an `Outcome` whose runtime says what ran and whose resources carry the driver JVM's peak RSS.
"""

from __future__ import annotations

from importlib.metadata import version

from pyspark.sql import SparkSession

from recommender import memory
from recommender.engine import Job, Outcome
from recommender.result import Runtime, SparkRuntime, TorchRuntime
from recommender.spark import df, rdd
from recommender.timing import PhaseTimer

MLLIB_APIS = {"rdd": rdd.run, "df": df.run}


def spark_runtime(spark: SparkSession) -> SparkRuntime:
    sc = spark.sparkContext
    return SparkRuntime(spark.version, str(sc.master), sc.applicationId, sc.defaultParallelism)


def blocks(spark: SparkSession, job: Job) -> int:
    return job.params.blocks or spark.sparkContext.defaultParallelism


def jvm_resources(spark: SparkSession) -> dict[str, float]:
    """The driver JVM's peak RSS (`memory.JVM_PEAK_RSS`), read from /proc by the pid the JVM gives
    itself (py4j's gateway is always on this host, whether Python started the JVM or spark-submit
    started Python); nothing where /proc cannot tell."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    peak = memory.peak_rss_bytes(int(jvm.java.lang.ProcessHandle.current().pid()))
    return {} if peak is None else {memory.JVM_PEAK_RSS: float(peak)}


def mllib(job: Job, timer: PhaseTimer) -> Outcome:
    """`impl python`: MLlib's ALS through PySpark, with the RDD (mllib) or DataFrame (ml) API."""
    spark = SparkSession.active()
    counts, metrics, examples, recommended = MLLIB_APIS[job.api](spark, job, timer)
    return Outcome(counts, metrics, Runtime(spark=spark_runtime(spark)), blocks(spark, job), examples,
                   resources=jvm_resources(spark), recommended=recommended)


def torch_spark(job: Job, timer: PhaseTimer) -> Outcome:
    """`impl torch-spark`: the PyTorch solver distributed by Spark, each task on `job.device`.
    The driver never imports torch (a second of start-up): only the tasks do; its version is the package's."""
    from recommender.tensor.on_spark import driver, figures

    spark = SparkSession.active()
    stage: list[figures.StageFigures] = []
    counts, metrics, examples, recommended = driver.run(spark, job, timer, report=stage.append)
    task_cpus = int(spark.conf.get("spark.task.cpus", "1") or 1)
    torch_info = TorchRuntime(version("torch"), job.device, task_cpus)
    return Outcome(counts, metrics, Runtime(spark_runtime(spark), torch_info), blocks(spark, job), examples,
                   resources=jvm_resources(spark) | ({k: float(v) for k, v in stage[0].extra_info().items()}
                                                     if stage else {}),
                   recommended=recommended)
