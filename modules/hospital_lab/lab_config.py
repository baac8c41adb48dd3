"""The lab as the Excel workbook describes it, read and checked before anything runs.

Three sheets, each with a header row (column order is free, names are case-insensitive):

    resources     resource | capacity                       staff groups and machines
    stages        stage | resource | min_minutes | mode_minutes | max_minutes
                  in the order a sample passes them; task times are triangular
    sample_types  sample_type | arrivals_per_hour | priority
                  Poisson arrivals; a lower priority number is served first at every stage
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException


class LabConfigError(ValueError):
    """The workbook is missing or does not describe a lab; the message says where and what."""


@dataclass(frozen=True)
class Resource:
    name: str
    capacity: int


@dataclass(frozen=True)
class Stage:
    name: str
    resource: str
    min_minutes: float
    mode_minutes: float
    max_minutes: float


@dataclass(frozen=True)
class SampleType:
    name: str
    arrivals_per_hour: float
    priority: int


@dataclass(frozen=True)
class LabConfig:
    resources: tuple[Resource, ...]
    stages: tuple[Stage, ...]
    sample_types: tuple[SampleType, ...]

    def __post_init__(self) -> None:
        names = [r.name for r in self.resources]
        if len(set(names)) != len(names):
            raise LabConfigError(f"sheet 'resources': resource names must be unique, got {names}")
        for stage in self.stages:
            if stage.resource not in names:
                raise LabConfigError(
                    f"sheet 'stages': stage {stage.name!r} uses resource {stage.resource!r}, "
                    f"which sheet 'resources' does not list ({', '.join(names)})"
                )
        types = [t.name for t in self.sample_types]
        if len(set(types)) != len(types):
            raise LabConfigError(f"sheet 'sample_types': names must be unique, got {types}")


SHEETS: dict[str, tuple[str, ...]] = {
    "resources": ("resource", "capacity"),
    "stages": ("stage", "resource", "min_minutes", "mode_minutes", "max_minutes"),
    "sample_types": ("sample_type", "arrivals_per_hour", "priority"),
}


def load_lab_config(path: Path) -> LabConfig:
    """Read the workbook at `path`; LabConfigError names the sheet, row and column of any problem."""
    if not path.is_file():
        raise LabConfigError(f"input workbook {path} does not exist (INPUT_EXCEL_FILE)")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as e:
        raise LabConfigError(f"{path} is not a readable .xlsx workbook: {e}") from None
    try:
        rows = {sheet: _rows(workbook, sheet, columns) for sheet, columns in SHEETS.items()}
    finally:
        workbook.close()
    resources = tuple(
        Resource(_text(r, "resource"), _number(r, "capacity", int, minimum=1)) for r in rows["resources"]
    )
    stages = tuple(_stage(r) for r in rows["stages"])
    sample_types = tuple(
        SampleType(
            _text(r, "sample_type"),
            _number(r, "arrivals_per_hour", float, minimum=0),
            _number(r, "priority", int, minimum=0),
        )
        for r in rows["sample_types"]
    )
    if not any(t.arrivals_per_hour > 0 for t in sample_types):
        raise LabConfigError("sheet 'sample_types': at least one sample type needs arrivals_per_hour > 0")
    return LabConfig(resources, stages, sample_types)


class _Row(dict[str, Any]):
    """One data row by column name, remembering where it came from for error messages."""

    where: str


def _rows(workbook: Any, sheet: str, columns: tuple[str, ...]) -> list[_Row]:
    if sheet not in workbook.sheetnames:
        raise LabConfigError(
            f"the workbook has no sheet {sheet!r} (it has: {', '.join(workbook.sheetnames)})"
        )
    values = [row for row in workbook[sheet].iter_rows(values_only=True) if any(v is not None for v in row)]
    if not values:
        raise LabConfigError(f"sheet {sheet!r} is empty; its header row is: {' | '.join(columns)}")
    header = [str(v).strip().lower() if v is not None else "" for v in values[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise LabConfigError(f"sheet {sheet!r} lacks the column(s) {', '.join(missing)} in its header row")
    if len(values) < 2:
        raise LabConfigError(f"sheet {sheet!r} has a header but no rows")
    rows = []
    for number, raw in enumerate(values[1:], start=2):
        row = _Row({c: raw[header.index(c)] if header.index(c) < len(raw) else None for c in columns})
        row.where = f"sheet {sheet!r} row {number}"
        rows.append(row)
    return rows


def _text(row: _Row, column: str) -> str:
    value = row[column]
    if value is None or not str(value).strip():
        raise LabConfigError(f"{row.where}: column {column!r} is empty")
    return str(value).strip()


def _number(row: _Row, column: str, kind: type[int] | type[float], minimum: float) -> Any:
    value = row[column]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LabConfigError(f"{row.where}: column {column!r} must be a number, got {value!r}")
    if kind is int and value != int(value):
        raise LabConfigError(f"{row.where}: column {column!r} must be a whole number, got {value!r}")
    if value < minimum:
        raise LabConfigError(f"{row.where}: column {column!r} must be at least {minimum}, got {value!r}")
    return kind(value)


def _stage(row: _Row) -> Stage:
    low, mode, high = (_number(row, c, float, minimum=0) for c in SHEETS["stages"][2:])
    if not low <= mode <= high or high == 0:
        raise LabConfigError(
            f"{row.where}: task times need min_minutes <= mode_minutes <= max_minutes and max > 0, "
            f"got {low}, {mode}, {high}"
        )
    return Stage(_text(row, "stage"), _text(row, "resource"), low, mode, high)
