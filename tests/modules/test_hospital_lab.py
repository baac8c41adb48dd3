"""The sample analytics module (modules/hospital_lab): its settings, workbook checks, model and outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from modules.hospital_lab import make_sample
from modules.hospital_lab.lab_config import SHEETS, LabConfigError, load_lab_config
from modules.hospital_lab.model import percentile, simulate
from modules.hospital_lab.run import BAD_INPUT, RunSettings, SettingsError, main, run_lab

MODULES = Path(__file__).resolve().parents[2] / "modules"
SAMPLE = MODULES / "hospital_lab" / "sample_input.xlsx"
SHORT = "24"  # simulated hours: enough samples for every KPI, quick to run


def env(output: Path, **extra: str) -> dict[str, str]:
    return {"INPUT_EXCEL_FILE": str(SAMPLE), "OUTPUT_FOLDER": str(output), "SIM_HOURS": SHORT, **extra}


def kpis_of(run_index: int, **extra: str) -> dict[str, Any]:
    settings = RunSettings.from_env(env(Path("/unused"), RUN_INDEX=str(run_index), **extra))
    return run_lab(settings)["kpis.json"]


def workbook(path: Path, **sheets: list[list[Any]]) -> Path:
    """The sample's sheets, the ones given replaced (header row first); a sheet given as [] is left out."""
    rows = {
        "resources": [list(SHEETS["resources"]), *map(list, make_sample.RESOURCES)],
        "stages": [list(SHEETS["stages"]), *map(list, make_sample.STAGES)],
        "sample_types": [list(SHEETS["sample_types"]), *map(list, make_sample.SAMPLE_TYPES)],
        **sheets,
    }
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, sheet_rows in rows.items():
        if sheet_rows:
            sheet = book.create_sheet(name)
            for row in sheet_rows:
                sheet.append(row)
    book.save(path)
    return path


# --- seeding: runs of one launch differ, a run repeated is the same ----------------------------------------


def test_the_same_run_index_gives_the_same_kpis() -> None:
    assert kpis_of(3) == kpis_of(3)


def test_different_run_indexes_give_different_kpis() -> None:
    first, second = kpis_of(0), kpis_of(1)
    assert first["seeds"] != second["seeds"]
    assert first["kpis"] != second["kpis"]
    assert first["kpis"]["turnaround_hours"]["mean"] != second["kpis"]["turnaround_hours"]["mean"]


def test_job_completion_index_is_the_run_index_when_run_index_is_absent() -> None:
    assert RunSettings.from_env({"JOB_COMPLETION_INDEX": "4"}).run_index == 4
    assert RunSettings.from_env({"JOB_COMPLETION_INDEX": "4", "RUN_INDEX": "7"}).run_index == 7
    assert RunSettings.from_env({}).run_index == 0


def test_replications_of_one_run_differ_and_kpis_json_is_their_mean(tmp_path: Path) -> None:
    assert main(env(tmp_path, NUM_REPS="2", RUN_INDEX="5")) == 0
    reps = [json.loads((tmp_path / f"replication_{k}.json").read_text()) for k in (0, 1)]
    summary = json.loads((tmp_path / "kpis.json").read_text())
    assert reps[0]["seed"] != reps[1]["seed"]
    assert reps[0]["kpis"] != reps[1]["kpis"]
    completed = [r["kpis"]["samples_completed"] for r in reps]
    assert summary["kpis"]["samples_completed"] == sum(completed) / 2
    assert summary["seeds"] == [r["seed"] for r in reps]


# --- outputs ------------------------------------------------------------------------------------------------


def test_outputs_are_json_files_in_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "output"
    assert main(env(out, NUM_REPS="3", RUN_INDEX="2", RUN_ID="job-2")) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "kpis.json",
        "replication_0.json",
        "replication_1.json",
        "replication_2.json",
    ]
    summary = json.loads((out / "kpis.json").read_text())
    assert (summary["run_index"], summary["run_id"], summary["num_reps"]) == (2, "job-2", 3)
    kpis = summary["kpis"]
    assert 0 < kpis["samples_completed"] <= kpis["samples_arrived"]
    turnaround = kpis["turnaround_hours"]
    assert 0 < turnaround["mean"] <= turnaround["max"]
    assert turnaround["p50"] <= turnaround["p90"] <= turnaround["max"]
    assert set(kpis["resources"]) == {name for name, _ in make_sample.RESOURCES}
    for figures in kpis["resources"].values():
        assert 0 < figures["utilisation"] <= 1
        assert 0 <= figures["mean_queue_length"] <= figures["max_queue_length"]


def test_the_entry_point_runs_as_the_container_runs_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hospital_lab"],
        cwd=MODULES,
        env=env(tmp_path, RUN_INDEX="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "samples completed" in done.stdout
    assert json.loads((tmp_path / "kpis.json").read_text())["run_index"] == 1


# --- the model ----------------------------------------------------------------------------------------------


def test_more_pathologists_shorten_the_wait_for_reporting(tmp_path: Path) -> None:
    def pathologist_wait(capacity: int) -> float:
        resources = [
            [*SHEETS["resources"]],
            *([n, capacity if n == "pathologist" else c] for n, c in make_sample.RESOURCES),
        ]
        lab = load_lab_config(workbook(tmp_path / f"lab{capacity}.xlsx", resources=resources))
        return simulate(lab, 72, seed=11)["resources"]["pathologist"]["mean_wait_minutes"]

    assert pathologist_wait(20) < pathologist_wait(4)


def test_urgent_samples_wait_less_than_routine_ones_at_a_busy_lab(tmp_path: Path) -> None:
    busy = [[*SHEETS["sample_types"]], ["urgent", 3, 0], ["routine", 9.5, 1]]
    lab = load_lab_config(workbook(tmp_path / "busy.xlsx", sample_types=busy))
    by_type = simulate(lab, 168, seed=5)["turnaround_hours_by_type"]
    assert by_type["urgent"]["mean"] < by_type["routine"]["mean"]


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 90) is None
    assert percentile([4.0], 90) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([0.0, 10.0], 90) == pytest.approx(9.0)


# --- bad input: a clear message, exit status 2, nothing written -------------------------------------------


def run_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str], **settings: str) -> str:
    out = tmp_path / "output"
    assert main({**env(out), **settings}) == BAD_INPUT
    assert not out.exists()
    return capsys.readouterr().err


def test_a_missing_workbook_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_bad(tmp_path, capsys, INPUT_EXCEL_FILE=str(tmp_path / "nope.xlsx"))
    assert "nope.xlsx does not exist" in err
    assert err.startswith("hospital_lab: error:")


def test_a_file_that_is_not_a_workbook_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "input.xlsx"
    text.write_text("resource,capacity\nreception,2\n")
    assert "is not a readable .xlsx workbook" in run_bad(tmp_path, capsys, INPUT_EXCEL_FILE=str(text))


@pytest.mark.parametrize(
    ("sheets", "message"),
    [
        ({"stages": []}, "the workbook has no sheet 'stages'"),
        ({"resources": [["resource", "seats"], ["reception", 2]]}, "lacks the column(s) capacity"),
        ({"resources": [["resource", "capacity"]]}, "sheet 'resources' has a header but no rows"),
        (
            {"resources": [["resource", "capacity"], ["reception", "two"]]},
            "row 2: column 'capacity' must be a number",
        ),
        ({"resources": [["resource", "capacity"], ["reception", 0]]}, "column 'capacity' must be at least 1"),
        ({"resources": [["resource", "capacity"], ["reception", 1.5]]}, "must be a whole number"),
        (
            {"stages": [list(SHEETS["stages"]), ["cut_up", "microscope", 1, 2, 3]]},
            "uses resource 'microscope'",
        ),
        (
            {"stages": [list(SHEETS["stages"]), ["cut_up", "reception", 5, 2, 3]]},
            "min_minutes <= mode_minutes",
        ),
        ({"sample_types": [list(SHEETS["sample_types"]), ["routine", 0, 1]]}, "arrivals_per_hour > 0"),
        ({"sample_types": [list(SHEETS["sample_types"]), ["", 2, 1]]}, "column 'sample_type' is empty"),
    ],
)
def test_a_workbook_that_does_not_describe_a_lab_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sheets: dict[str, list[list[Any]]], message: str
) -> None:
    book = workbook(tmp_path / "input.xlsx", **sheets)
    with pytest.raises(LabConfigError, match=r"\S"):
        load_lab_config(book)
    assert message in run_bad(tmp_path, capsys, INPUT_EXCEL_FILE=str(book))


@pytest.mark.parametrize(
    ("name", "value"), [("SIM_HOURS", "a week"), ("SIM_HOURS", "-1"), ("NUM_REPS", "0"), ("RUN_INDEX", "x")]
)
def test_bad_settings_are_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    with pytest.raises(SettingsError):
        RunSettings.from_env({name: value})
    assert f"{name} must be" in run_bad(tmp_path, capsys, **{name: value})


# --- the sample workbook ------------------------------------------------------------------------------------


def test_the_committed_sample_is_what_make_sample_writes() -> None:
    assert SAMPLE.read_bytes() == make_sample.sample_workbook()
