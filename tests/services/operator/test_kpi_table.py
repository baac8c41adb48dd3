"""The study summary's table and statistics (pure): figures checked against values computed here
independently (the statistics module and a t table), never against the code under test."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics

import pytest

from services.operator.kpi_table import (
    FAILED,
    MAX_KPIS,
    SUCCEEDED,
    Interval,
    RunKpis,
    StudyTable,
    flatten_kpis,
)
from services.shared.study import kpi_file_of, run_number, scenario_of

T_975_DF3 = 3.182446305284263  # t(0.975, 3), as scipy.stats.t.ppf gives it (tables: 3.182)
# t(0.975, 2) from its closed form (2p - 1) sqrt(2 / (4p(1 - p))) (tables: 4.303)
T_975_DF2 = 0.95 * math.sqrt(2 / (4 * 0.975 * 0.025))


def test_flatten_reads_nested_kpis_in_document_order_and_skips_arrays() -> None:
    document = {"a": {"x": 1, "y": {"z": 2.5}}, "b": "text", "c": [1, 2], "d": True, "e": None}
    assert flatten_kpis(document) == {"a.x": 1, "a.y.z": 2.5, "b": "text", "d": True, "e": None}
    assert list(flatten_kpis(document)) == ["a.x", "a.y.z", "b", "d", "e"]


def test_flatten_reads_only_the_kpis_object_when_there_is_one() -> None:
    """The sample hospital module's form: run metadata beside an object `kpis`."""
    document = {"run_index": 3, "seeds": [1, 2], "kpis": {"samples_completed": 40, "tat": {"p90": 31.5}}}
    assert flatten_kpis(document) == {"samples_completed": 40, "tat.p90": 31.5}


def test_flatten_keeps_non_finite_numbers_as_text_and_refuses_non_objects() -> None:
    assert flatten_kpis(json.loads('{"a": NaN, "b": Infinity}')) == {"a": "nan", "b": "inf"}
    assert flatten_kpis([1, 2]) == {} and flatten_kpis(3) == {}


def test_which_output_is_the_kpi_json() -> None:
    assert kpi_file_of(["kpis.json", "replication_0.json", "plot.png"]) == "kpis.json"
    assert kpi_file_of(["results/out.json", "log.txt"]) == "results/out.json"
    assert kpi_file_of(["a.json", "b.json"]) is None
    assert kpi_file_of(["log.txt"]) is None
    assert kpi_file_of(["sub/kpis.json", "other.json"]) is None  # kpis.json counts at the top only


def test_run_numbers_are_scenario_major() -> None:
    assert [run_number(k, r, 4) for k in range(3) for r in range(4)] == list(range(12))
    assert scenario_of(9, 4) == (2, 1)


def test_interval_against_independent_figures() -> None:
    values = [12.0, 15.5, 9.25, 14.0]
    interval = Interval.of(values)
    mean, std = statistics.mean(values), statistics.stdev(values)
    half = T_975_DF3 * std / math.sqrt(4)
    assert interval.n == 4
    assert interval.mean == pytest.approx(mean, rel=1e-15)
    assert interval.std == pytest.approx(std, rel=1e-14)
    assert interval.t == pytest.approx(T_975_DF3, rel=1e-12)
    assert interval.ci95_low == pytest.approx(mean - half, rel=1e-12)
    assert interval.ci95_high == pytest.approx(mean + half, rel=1e-12)


def test_interval_of_one_value_has_no_spread() -> None:
    assert Interval.of([7.0]).as_dict() == {
        "n": 1, "mean": 7.0, "std": None, "t": None, "ci95_low": None, "ci95_high": None,
    }  # fmt: skip


def study_rows() -> list[RunKpis]:
    """Two scenarios, three replications; run 4 failed; run 5 has a text KPI and a boolean."""
    kpis = {
        0: {"throughput": 10, "wait": {"mean": 1.5}},
        1: {"throughput": 12, "wait": {"mean": 2.5}},
        2: {"throughput": 17, "wait": {"mean": 2.0}},
        3: {"throughput": 20, "wait": {"mean": 4.0}},
        5: {"throughput": 26, "wait": {"mean": 5.0}, "note": "slow day", "ok": True},
    }
    rows = []
    for run in range(6):
        k, r = scenario_of(run, 3)
        name = ("base", "more-staff")[k]
        if run == 4:
            rows.append(RunKpis(run, name, r, FAILED, note="the run failed"))
        else:
            rows.append(RunKpis(run, name, r, SUCCEEDED, "kpis.json", flatten_kpis(kpis[run])))
    return rows


def test_table_statistics_use_succeeded_runs_by_scenario() -> None:
    table = StudyTable.build("sid", 3, ["base", "more-staff"], reversed(study_rows()))
    assert [row.run for row in table.runs] == [0, 1, 2, 3, 4, 5]
    assert table.columns == ["throughput", "wait.mean", "note", "ok"]
    base = table.statistics["base"]
    assert set(base) == {"throughput", "wait.mean"}  # text and booleans are not numeric
    assert base["throughput"].mean == pytest.approx(13.0)
    expected_half = T_975_DF2 * statistics.stdev([10, 12, 17]) / math.sqrt(3)
    assert base["throughput"].ci95_high == pytest.approx(13.0 + expected_half, rel=1e-12)
    staff = table.statistics["more-staff"]
    assert staff["throughput"].n == 2 and staff["throughput"].mean == pytest.approx(23.0)  # run 4 failed
    assert staff["wait.mean"].mean == pytest.approx(4.5)


def test_json_rendering() -> None:
    table = StudyTable.build("sid", 3, ["base", "more-staff"], study_rows())
    document = json.loads(table.to_json())
    assert document["format"] == "dtpoc.study-summary/1"
    assert (document["service_id"], document["reps"], document["confidence"]) == ("sid", 3, 0.95)
    assert document["runs"][4] == {
        "run": 4, "scenario": "more-staff", "replication": 1, "status": "failed", "source": None,
        "note": "the run failed", "kpis": {},
    }  # fmt: skip
    assert document["runs"][5]["kpis"] == {"throughput": 26, "wait.mean": 5.0, "note": "slow day", "ok": True}
    staff = document["scenarios"][1]
    assert (staff["name"], staff["runs"], staff["succeeded"], staff["failed"]) == (
        "more-staff", [3, 4, 5], 2, 1,
    )  # fmt: skip
    assert staff["statistics"]["throughput"]["mean"] == pytest.approx(23.0)


def test_csv_rendering_is_one_table_by_scenario_then_statistics() -> None:
    table = StudyTable.build("sid", 3, ["base", "more-staff"], study_rows())
    rows = list(csv.reader(io.StringIO(table.to_csv().decode())))
    assert rows[0] == [
        "scenario",
        "replication",
        "run",
        "status",
        "source",
        "throughput",
        "wait.mean",
        "note",
        "ok",
    ]
    assert rows[1] == ["base", "0", "0", "succeeded", "kpis.json", "10", "1.5", "", ""]
    assert [row[1] for row in rows[1:9]] == ["0", "1", "2", "n", "mean", "std", "ci95_low", "ci95_high"]
    mean_row = rows[5]
    assert mean_row[:5] == ["base", "mean", "", "", ""] and float(mean_row[5]) == pytest.approx(13.0)
    assert mean_row[7:] == ["", ""]  # no statistics of text or booleans
    assert rows[9:12] == [
        ["more-staff", "0", "3", "succeeded", "kpis.json", "20", "4.0", "", ""],
        ["more-staff", "1", "4", "failed", "", "", "", "", ""],
        ["more-staff", "2", "5", "succeeded", "kpis.json", "26", "5.0", "slow day", "true"],
    ]
    n_row = rows[12]
    assert n_row[:7] == ["more-staff", "n", "", "", "", "2", "2"]
    # Floats are written in their shortest exact form: the CSV gives back the very same numbers.
    low = next(row for row in rows if row[:2] == ["base", "ci95_low"])
    assert float(low[5]) == table.statistics["base"]["throughput"].ci95_low


def test_kpi_columns_are_capped() -> None:
    rows = [RunKpis(0, "a", 0, SUCCEEDED, "kpis.json", {f"k{i}": i for i in range(MAX_KPIS + 7)})]
    table = StudyTable.build("sid", 1, ["a"], rows)
    assert len(table.columns) == MAX_KPIS
    assert table.notes == [f"7 KPI names beyond the first {MAX_KPIS} were left out"]
    assert len(json.loads(table.to_json())["runs"][0]["kpis"]) == MAX_KPIS
