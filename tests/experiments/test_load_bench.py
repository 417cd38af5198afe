"""experiments/load_bench.py: every case loads the same file and the report says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import load_bench


@pytest.mark.unit
def test_table_gives_each_case_its_ratio_to_the_floor_and_its_busy_flag() -> None:
    def case(name: str, median: float, busy: bool) -> dict[str, object]:
        return {"name": name, "stats": {"median": median, "min": median},
                "extra_info": {"runs": [{"load": {"busy": busy}}]}}

    lines = load_bench.table([case("floor", 10.0, False), case("load_df", 15.0, True)]).splitlines()
    assert lines[1].split() == ["floor", "10.0", "10.0", "1.00", "no"]
    assert lines[2].split() == ["load_df", "15.0", "15.0", "1.50", "BUSY"]


@pytest.mark.spark
def test_every_case_loads_every_rating_of_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("".join(f"{u},{i},{(u + i) % 5 + 0.5}\n" for u in range(1, 30) for i in (1, 7, 10, 99, 1000)))
    out = tmp_path / "load.json"
    cases = "floor,csv_reader,load_df,load_df_pairs"
    assert load_bench.main(["--data", str(path), "--rounds", "1", "--cases", cases, "--json", str(out),
                            "--driver-memory", "1g"]) == 0
    benchmarks = json.loads(out.read_text())["benchmarks"]
    assert [b["name"] for b in benchmarks] == cases.split(",")
    assert all(b["extra_info"]["runs"][0]["ratings"] == 145 for b in benchmarks)
    assert "load_df_pairs" in capsys.readouterr().out


@pytest.mark.unit
def test_an_unknown_case_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(SystemExit):
        load_bench.main(["--data", str(path), "--cases", "floor,fastest"])
