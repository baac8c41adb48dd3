"""A study's summary as data: every run's KPIs in one table, and per scenario each numeric KPI's mean
and 95% interval. Pure (no I/O): services.operator.summary reads the runs' KPI JSON and stores what
this renders.

- KPIs of a run: the scalar leaves of its KPI JSON (services.shared.study.kpi_file_of says which file),
  nested objects flattened to dotted names (`turnaround_hours.p90`). When the document has an object
  `kpis` at its top (the sample hospital module's form: the other fields describe the run), only that
  object is read. Arrays are not KPIs and are left out.
- A numeric KPI is an int or a float (not a boolean); NaN and infinities are kept as the text "nan",
  "inf", "-inf" and count as not numeric.
- Statistics of a scenario use its succeeded runs only (a failed run's KPIs are not in the table):
  n, mean, the sample standard deviation (n - 1), and the two-sided 95% interval mean ± t·s/√n with
  t Student's quantile for n - 1 degrees of freedom (services.operator.student_t). With one value the
  interval and the deviation are null; with none, the KPI has no statistics in that scenario.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.shared.study import SUMMARY_FORMAT

from .student_t import interval_factor

Cell = int | float | str | bool | None
CONFIDENCE = 0.95
# KPI columns kept per study: a KPI JSON is written by the module (untrusted), and the table is stored
# and served whole; past this many names the rest are left out, with a note.
MAX_KPIS = 500
SUCCEEDED = "succeeded"
FAILED = "failed"
STATISTICS = ("n", "mean", "std", "ci95_low", "ci95_high")


def _scalar(value: Any) -> Cell:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf": JSON has no such numbers
    return value  # type: ignore[no-any-return]


def flatten_kpis(document: Any) -> dict[str, Cell]:
    """The KPIs of one KPI JSON document, by dotted name, in the document's order."""
    if isinstance(document, dict) and isinstance(document.get("kpis"), dict):
        document = document["kpis"]
    flat: dict[str, Cell] = {}
    if isinstance(document, dict):
        _flatten_into(flat, "", document)
    return flat


def _flatten_into(flat: dict[str, Cell], prefix: str, node: dict[str, Any]) -> None:
    # Recursion is bounded: json.loads refuses documents nested deeper than Python's recursion limit.
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten_into(flat, f"{name}.", value)
        elif not isinstance(value, list):
            flat[name] = _scalar(value)


def is_number(value: Cell) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class RunKpis:
    """One run's row: where it sits in the study, how it ended, and its KPIs (empty: none read)."""

    run: int
    scenario: str
    replication: int
    status: str  # SUCCEEDED or FAILED
    source: str | None = None  # the output file the KPIs came from
    kpis: dict[str, Cell] = field(default_factory=dict)
    note: str | None = None  # why there are no KPIs, or what was left out


@dataclass(frozen=True)
class Interval:
    """A numeric KPI over one scenario's succeeded runs."""

    n: int
    mean: float
    std: float | None
    t: float | None
    ci95_low: float | None
    ci95_high: float | None

    @classmethod
    def of(cls, values: list[float], confidence: float = CONFIDENCE) -> Interval:
        if not values:
            raise ValueError("no values")
        n = len(values)
        mean = math.fsum(values) / n
        if n == 1:
            return cls(1, mean, None, None, None, None)
        std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1))
        t = interval_factor(confidence, n)
        half = t * std / math.sqrt(n)
        return cls(n, mean, std, t, mean - half, mean + half)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "t": self.t,
            "ci95_low": self.ci95_low,
            "ci95_high": self.ci95_high,
        }


@dataclass
class StudyTable:
    service_id: str
    reps: int
    scenarios: list[str]
    runs: list[RunKpis]  # in run order
    columns: list[str]  # every KPI name, in first-seen order
    statistics: dict[str, dict[str, Interval]]  # scenario -> numeric KPI -> its interval
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, service_id: str, reps: int, scenarios: list[str], runs: Iterable[RunKpis]) -> StudyTable:
        ordered = sorted(runs, key=lambda row: row.run)
        columns: list[str] = []
        known: set[str] = set()
        dropped = 0
        for row in ordered:
            for name in row.kpis:
                if name in known:
                    continue
                if len(columns) >= MAX_KPIS:
                    dropped += 1
                    continue
                known.add(name)
                columns.append(name)
        notes = [f"{dropped} KPI names beyond the first {MAX_KPIS} were left out"] if dropped else []
        statistics: dict[str, dict[str, Interval]] = {}
        for scenario in scenarios:
            succeeded = [row for row in ordered if row.scenario == scenario and row.status == SUCCEEDED]
            per_kpi: dict[str, Interval] = {}
            for name in columns:
                values = [float(v) for row in succeeded if is_number(v := row.kpis.get(name))]  # type: ignore[arg-type]
                if values:
                    per_kpi[name] = Interval.of(values)
            statistics[scenario] = per_kpi
        return cls(service_id, reps, scenarios, ordered, columns, statistics, notes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": SUMMARY_FORMAT,
            "service_id": self.service_id,
            "reps": self.reps,
            "confidence": CONFIDENCE,
            "columns": self.columns,
            "runs": [
                {
                    "run": row.run,
                    "scenario": row.scenario,
                    "replication": row.replication,
                    "status": row.status,
                    "source": row.source,
                    "note": row.note,
                    "kpis": {name: row.kpis[name] for name in self.columns if name in row.kpis},
                }
                for row in self.runs
            ],
            "scenarios": [
                {
                    "name": scenario,
                    "runs": [row.run for row in self.runs if row.scenario == scenario],
                    "succeeded": sum(
                        1 for row in self.runs if row.scenario == scenario and row.status == SUCCEEDED
                    ),
                    "failed": sum(
                        1 for row in self.runs if row.scenario == scenario and row.status == FAILED
                    ),
                    "statistics": {name: iv.as_dict() for name, iv in self.statistics[scenario].items()},
                }
                for scenario in self.scenarios
            ],
            "notes": self.notes,
        }

    def to_json(self) -> bytes:
        # allow_nan=False: strict JSON (non-finite values are already text, see _scalar).
        return (json.dumps(self.as_dict(), indent=2, allow_nan=False) + "\n").encode()

    def to_csv(self) -> bytes:
        """One table: per scenario its replications' rows, then one row per statistic (the statistic's
        name in the `replication` column, empty `run`, `status` and `source`)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["scenario", "replication", "run", "status", "source", *self.columns])
        for scenario in self.scenarios:
            for row in self.runs:
                if row.scenario == scenario:
                    cells = [_text(row.kpis.get(name)) for name in self.columns]
                    writer.writerow(
                        [scenario, row.replication, row.run, row.status, row.source or "", *cells]
                    )
            for statistic in STATISTICS:
                values = []
                for name in self.columns:
                    interval = self.statistics[scenario].get(name)
                    values.append(_text(getattr(interval, statistic)) if interval is not None else "")
                writer.writerow([scenario, statistic, "", "", "", *values])
        return out.getvalue().encode()


def _text(value: Cell) -> str:
    """A cell as CSV text: floats in their shortest exact form (repr), booleans as JSON has them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
