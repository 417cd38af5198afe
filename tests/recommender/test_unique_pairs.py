"""`--unique-pairs`: set for the conversions this suite validated (runner, EMR and `run`), never for a
user's file, and passed on to every implementation; the `data` command on a user's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.grid import Case
from experiments.runner import case_job
from recommender import cli
from recommender.data.sources import validated_conversion
from recommender.launch.submit import job_arguments
from recommender.params import ALSParams

pytestmark = pytest.mark.unit


def test_only_conversions_this_suite_makes_count_as_validated(tmp_path: Path) -> None:
    for name in ("ml-20m", "ml-100k:u1", "synthetic:ml-20m", "synthetic:ml-20m:3", "fractal:ml-100k:2x2"):
        assert validated_conversion(name), name
    mine = tmp_path / "ml-mine.csv"
    mine.write_text("1,2,3\n")
    assert not validated_conversion(str(mine)) and not validated_conversion("ratings.csv")


def test_the_runner_and_emr_pass_unique_pairs_for_prepared_data_only() -> None:
    prepared = case_job(Case("synthetic:ml-20m", "cpu", "python", "df", 2), "/c/ratings.csv", ALSParams())
    assert prepared.unique_pairs and "--unique-pairs" in job_arguments(prepared)
    user = case_job(Case("/data/mine.csv", "cpu", "python", "df", 2), "/data/mine.csv", ALSParams())
    assert not user.unique_pairs and "--unique-pairs" not in job_arguments(user)


def test_the_flag_round_trips_through_the_shared_arguments() -> None:
    args = cli.build_parser().parse_args(["run", "--data", "x", "--unique-pairs"])
    _, job = cli.job_from(args, "x.csv", "x")
    assert job.unique_pairs
    again = cli.build_parser().parse_args(["run", "--data", "x", *job_arguments(job)[1:]])
    assert cli.job_from(again, "x.csv", "x")[1] == job


def test_data_on_a_user_file_warns_about_ratings_off_its_scale(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("".join(f"{u},{i},{(u + i) % 5 + 1}\n" for u in range(1, 60) for i in range(1, 60)) + "1,99,40\n")
    assert cli.main(["data", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "3,482 ratings, every line valid" in out
    assert f"warning: {path}: 1 of 3,482 ratings lie off the scale the bulk of the file shows (1 to 5" in err
    path.write_text("1,2,x\n")
    assert cli.main(["data", str(path)]) == 2
    assert f"error: {path}, line 1: rating 'x' is not a finite number" in capsys.readouterr().err
