"""Every ALS implementation of the suite, one record each: the only list of them.

The CLI's choices, the entry script, the grid's expansion, the runner's and EMR's command lines,
EMR's cost model and the benchmark skips all read this table; adding an engine is one record here
and its module. Importing this module imports neither pyspark nor torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

from recommender.params import SOLVERS, ALSParams

OBJECTIVES = ("explicit", "implicit")


class Launcher(Enum):
    """How a run of the implementation is started."""

    PYSPARK = "pyspark"  # `spark-submit recommender/entry.py`: a PySpark driver in this package
    PYTHON = "python"  # `python recommender/entry.py`: a plain process, no Spark
    JVM = "jvm"  # `spark-submit --class MAIN als-recommender.jar`: the Scala/Java programs


class Need(Enum):
    """What a machine must have for an implementation to run (see recommender/capabilities.py)."""

    JVM = "jvm"  # Java 17+ for Spark
    JDK = "jdk"  # javac, to build the jar
    TORCH = "torch"  # PyTorch (requirements-torch.txt)
    IMPLICIT = "implicit"  # the `implicit` library (requirements-peers.txt)
    LENSKIT = "lenskit"  # LensKit (requirements-peers.txt)


@dataclass(frozen=True)
class Implementation:
    """One implementation: what it is, which Spark APIs it has, how it starts, what it needs."""

    name: str
    description: str
    apis: tuple[str, ...]  # Spark APIs: rdd (mllib), df (ml); `none` for an engine without Spark
    launcher: Launcher
    needs: frozenset[Need]
    engine: str | None = None  # "module:function" of an in-process engine (PYSPARK, PYTHON)
    main_class: str | None = None  # the JVM programs' entry class
    devices: tuple[str, ...] = ("cpu",)  # torch devices the engine itself runs on
    emr: bool = True  # runs as an EMR step
    reads_parquet: bool = False  # reads a data set's Parquet conversion rather than the study's text
    recommends: bool = False  # has the recommend phase (--top-k)
    reads_test: bool = False  # evaluates on a predefined test file (--test, `--data ml-100k:u1`)
    versus: str | None = None  # the implementation the report compares it with (the study: Scala over Python)
    solvers: tuple[str, ...] = ("cholesky",)  # `ALSParams.solver`s it has (MLlib solves each row by Cholesky)
    objectives: tuple[str, ...] = OBJECTIVES  # explicit (ratings) and implicit (`ALSParams.implicit`) feedback
    ours: bool = False  # this suite's own solver (the peers table's ratios are to the fastest of these)
    peer: bool = False  # another library's ALS, measured beside ours (recommender/peers)
    # The study's time relative to Scala's on the same API (EMR's cost estimate): its Python RDD
    # recommender took 858 s where Scala took 191 s.
    slowdown: tuple[tuple[str, float], ...] = ()

    @property
    def uses_spark(self) -> bool:
        return self.launcher is not Launcher.PYTHON

    @property
    def own_gpu_solver(self) -> bool:
        """Solves on the GPU itself (`--device cuda`), rather than through spark-rapids."""
        return "cuda" in self.devices

    def relative_time(self, api: str) -> float:
        return dict(self.slowdown).get(api, 1.0)

    def load_engine(self) -> Any:
        """The engine function: `engine(job, timer) -> Outcome` (recommender/engine.py)."""
        if self.engine is None:
            raise ValueError(f"{self.name} runs as its own JVM program, not in this process")
        module, _, function = self.engine.partition(":")
        return getattr(importlib.import_module(module), function)


NO_SPARK_API = "none"

IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation(
        "python", "PySpark MLlib: pyspark.mllib (rdd) or pyspark.ml (df) ALS, driven from Python",
        ("rdd", "df"), Launcher.PYSPARK, frozenset({Need.JVM}), engine="recommender.spark.engines:mllib",
        recommends=True, reads_test=True, slowdown=(("rdd", 858 / 191),),
    ),
    Implementation(
        "scala", "Spark MLlib from Scala: mllib (rdd) or ml (df) ALS in the jar",
        ("rdd", "df"), Launcher.JVM, frozenset({Need.JVM, Need.JDK}), main_class="als.RecommenderScala",
        versus="python", recommends=True, reads_test=True,
    ),
    Implementation(
        "java", "Spark MLlib from Java: mllib (rdd) ALS in the jar",
        ("rdd",), Launcher.JVM, frozenset({Need.JVM, Need.JDK}), main_class="als.RecommenderJava",
        versus="python", recommends=True, reads_test=True,
    ),
    Implementation(
        "torch", "PyTorch ALS on one node, CPU or CUDA, no Spark",
        (NO_SPARK_API,), Launcher.PYTHON, frozenset({Need.TORCH}), engine="recommender.tensor.single:run",
        devices=("cpu", "cuda"), emr=False, reads_parquet=True, recommends=True, reads_test=True, solvers=SOLVERS,
        ours=True,
    ),
    Implementation(
        "torch-spark", "PyTorch ALS distributed by Spark (DataFrame input), CPU or CUDA per task",
        ("df",), Launcher.PYSPARK, frozenset({Need.JVM, Need.TORCH}), engine="recommender.spark.engines:torch_spark",
        devices=("cpu", "cuda"), emr=False, reads_parquet=True, recommends=True, reads_test=True, solvers=SOLVERS,
        ours=True,
    ),
    Implementation(
        "implicit", "the implicit library's CPU ALS (Cython, OpenMP): implicit feedback only, CG or Cholesky",
        (NO_SPARK_API,), Launcher.PYTHON, frozenset({Need.TORCH, Need.IMPLICIT}),
        engine="recommender.peers.implicit_als:run", emr=False, reads_parquet=True, recommends=True, reads_test=True,
        solvers=SOLVERS, objectives=("implicit",), peer=True,
    ),
    Implementation(
        "lenskit", "LensKit's ALS (Rust kernels): BiasedMF for explicit ratings, ImplicitMF with --implicit",
        (NO_SPARK_API,), Launcher.PYTHON, frozenset({Need.TORCH, Need.LENSKIT}),
        engine="recommender.peers.lenskit_als:run", emr=False, reads_parquet=True, recommends=True, reads_test=True,
        peer=True,
    ),
)

BY_NAME = {impl.name: impl for impl in IMPLEMENTATIONS}
NAMES = tuple(BY_NAME)
APIS = tuple(dict.fromkeys(api for impl in IMPLEMENTATIONS for api in impl.apis))
DEFAULT = "python"


def get(name: str) -> Implementation:
    """The implementation called `name`, or a ValueError listing the known ones."""
    if name not in BY_NAME:
        raise ValueError(f"unknown implementation {name!r}; known: {', '.join(NAMES)}")
    return BY_NAME[name]


def check_api(impl: Implementation, api: str) -> None:
    if api not in impl.apis:
        raise ValueError(f"the {impl.name} implementation has the {'/'.join(impl.apis)} API, not {api!r}")


def lacks(impl: Implementation, params: ALSParams) -> str | None:
    """Why `impl` cannot fit `params` (a solver or an objective it does not have), or None."""
    if params.solver not in impl.solvers:
        return f"the {impl.name} implementation solves by {'/'.join(impl.solvers)} only, not {params.solver}"
    objective = "implicit" if params.implicit else "explicit"
    if objective not in impl.objectives:
        return (f"the {impl.name} implementation fits {'/'.join(impl.objectives)} feedback only, "
                f"not {objective} (--implicit)")
    return None


def help_text() -> str:
    """One line per implementation, for the CLI's help."""
    return "; ".join(f"{impl.name}: {impl.description} [{'/'.join(impl.apis)}]" for impl in IMPLEMENTATIONS)
