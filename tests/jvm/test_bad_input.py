"""The shared table of bad and accepted lines (tests/bad_inputs.py) through the Scala and Java readers.

One spark-submit per implementation and chunk of ten bad lines keeps this affordable: with
--skip-bad-rows the result line lists the first ten bad lines, each with its line and problem.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from recommender.engine import Job
from recommender.launch import registry
from recommender.launch.submit import command, job_arguments, submit_env
from recommender.params import ALSParams
from tests.bad_inputs import ACCEPTED, BAD_LINES, jvm_message
from tests.engines import SUBMIT
from tests.jvm.cases import SHARED_RDD_PATH, cases_in_ci

pytestmark = [pytest.mark.scala, pytest.mark.spark]
GOOD = "".join(f"{u},{i},{(u * i) % 5 + 1}.0\n" for u in range(1, 9) for i in range(1, 9))
PARAMS = ALSParams(rank=2, iterations=2, reg=0.1)
CASES = sorted(BAD_LINES)
CHUNKS = [CASES[k : k + 10] for k in range(0, len(CASES), 10)]


def submit(impl: str, path: Path, api: str, params: ALSParams = PARAMS,
           skip_bad_rows: bool = False) -> subprocess.CompletedProcess[str]:
    job = Job(api, str(path), "test", params, skip_bad_rows)
    cmd = command(registry.get(impl), job_arguments(job), SUBMIT)
    return subprocess.run(cmd, env=submit_env(), capture_output=True, text=True, timeout=600)


def result_of(stdout: str) -> dict:
    """The result line, split at newlines only: a skipped example may hold U+2028 or U+0085."""
    lines = [line for line in stdout.split("\n") if line.startswith("ALS_RESULT ")]
    assert len(lines) == 1, stdout[-2000:]
    return json.loads(lines[0][len("ALS_RESULT ") :])


@pytest.mark.parametrize("impl, api", cases_in_ci(SHARED_RDD_PATH))
@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
def test_every_bad_line_is_skipped_and_named_like_python(jar: Path, tmp_path: Path, impl: str, api: str,
                                                         chunk: int) -> None:
    cases = CHUNKS[chunk]
    path = tmp_path / "ratings.csv"
    path.write_text(GOOD + "".join(BAD_LINES[c][0] + "\n" for c in cases))
    proc = submit(impl, path, api, skip_bad_rows=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = result_of(proc.stdout)
    assert result["counts"]["ratings"] == 64 and result["counts"]["skipped_rows"] == len(cases)
    assert result["skipped_examples"] == [
        f"line {65 + n}: {jvm_message(BAD_LINES[c][1])}" for n, c in enumerate(cases)
    ]


@pytest.mark.parametrize("impl, api", cases_in_ci(SHARED_RDD_PATH))
def test_documented_acceptances_and_blank_lines(jar: Path, tmp_path: Path, impl: str, api: str) -> None:
    """Fitted end to end, so without the largest rating, which MLlib cannot fit (a singular matrix, below)."""
    lines = [line for name, (line, _) in ACCEPTED.items() if name != "largest rating"]
    path = tmp_path / "ratings.csv"
    path.write_text("\n" + GOOD + "".join(line + "\n" for line in lines) + "\n \t\n")
    proc = submit(impl, path, api)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result_of(proc.stdout)["counts"]["ratings"] == 64 + len(lines)


@pytest.mark.parametrize("impl, api", cases_in_ci(SHARED_RDD_PATH))
def test_a_rating_past_the_limit_a_singular_fit_and_an_empty_training_set_are_clean_errors(jar: Path, tmp_path: Path,
                                                                     impl: str, api: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(GOOD + "1,2,3e38\n")
    proc = submit(impl, path, api)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: {path}, line 65: {BAD_LINES['rating near FLT_MAX'][1]}" in proc.stderr
    largest = tmp_path / "largest.csv"
    largest.write_text(GOOD + ACCEPTED["largest rating"][0] + "\n")
    proc = submit(impl, largest, api)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: {largest}: ALS could not fit these ratings at rank 2 with --reg 0.1: a normal matrix" in proc.stderr
    # No stack trace after the error. Spark may still log the other task's loss in one WARN line
    # as it stops ("Lost task … SingularMatrixException … [duplicate 1]"); that line is its log, not ours.
    after = proc.stderr.split(f"error: {largest}")[-1]
    assert "\tat " not in after and "Exception in thread" not in after and "Traceback" not in after
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("1,2,3\n")
    proc = submit(impl, tiny, api, ALSParams(rank=2, iterations=2, reg=0.1, holdout=0.99))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: {tiny}: no ratings left for training after holding out a fraction 0.99 of them" in proc.stderr
