"""The services record: ours as written, and the original platform's as it wrote it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId
from pydantic import ValidationError

from services.shared.records import OutputFile, ServiceRecord, parse_output_files

SEED_RECORD = {
    "_id": ObjectId("669a52d1364a1b751c550d56"),
    "image": "ghcr.io/cam-digital-hospitals/digital-hosp-des",
    "version": "latest",
    "description": "DES",
    "mount_files": None,
    "reps": 2,
    "env": None,
    "created_at": 1721395922.123456,
    "output_files": {"669a4eee364a1b751c550b02": "b.json", "669a4eee364a1b751c550b01": "a.json"},
}


def test_a_record_the_original_wrote_is_read() -> None:
    record = ServiceRecord.from_document(SEED_RECORD)
    assert (record.mount_files, record.env, record.reps) == ({}, {}, 2)
    assert record.created_at == datetime.fromtimestamp(1721395922.123456, UTC)
    # The map's order is the original's output order: runs 0, 1, ... whatever the names.
    assert [(o.run, o.file_id, o.filename) for o in record.outputs_in_order()] == [
        (0, "669a4eee364a1b751c550b02", "b.json"),
        (1, "669a4eee364a1b751c550b01", "a.json"),
    ]
    assert record.outputs_of_run(1) == [
        OutputFile(run=1, file_id="669a4eee364a1b751c550b01", filename="a.json")
    ]


@pytest.mark.parametrize("missing", ["mount_files", "env", "reps", "output_files", "description"])
def test_fields_the_original_left_out_are_defaults(missing: str) -> None:
    record = ServiceRecord.from_document({k: v for k, v in SEED_RECORD.items() if k != missing})
    defaults = {"mount_files": {}, "env": {}, "reps": None, "output_files": [], "description": ""}
    assert getattr(record, missing) == defaults[missing]


def test_null_output_files_and_description_are_empty() -> None:
    record = ServiceRecord.from_document({**SEED_RECORD, "output_files": None, "description": None})
    assert (record.output_files, record.description) == ([], "")


def test_our_record_round_trips() -> None:
    record = ServiceRecord(
        image="example.org/m",
        reps=3,
        env={"A": "1"},
        mount_files={"669a4eee364a1b751c550b02": "input.xlsx"},
        output_files=[
            OutputFile(run=1, file_id="f1", filename="z.json"),
            OutputFile(run=0, file_id="f0", filename="y"),
        ],
    )
    document = record.to_document(ObjectId())
    assert isinstance(document["created_at"], datetime)
    assert isinstance(document["output_files"], list)
    assert ServiceRecord.from_document(document) == record
    assert [o.file_id for o in record.outputs_in_order()] == ["f0", "f1"]


def test_a_naive_date_is_utc() -> None:
    record = ServiceRecord.from_document({**SEED_RECORD, "created_at": datetime(2024, 7, 19, 13, 32, 2)})
    assert record.created_at == datetime(2024, 7, 19, 13, 32, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad",
    [
        {"created_at": "yesterday"},
        {"created_at": True},
        {"env": ["A"]},
        {"output_files": "x"},
        {"reps": "two"},
    ],
)
def test_what_neither_platform_wrote_is_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ServiceRecord.from_document({**SEED_RECORD, **bad})


def test_parse_output_files() -> None:
    assert parse_output_files(None) == []
    assert parse_output_files({}) == []
    ours = [{"run": 0, "file_id": "f", "filename": "a"}]
    assert parse_output_files(ours) == ours
    assert parse_output_files({"f": "a", "g": "b"}) == [
        {"run": 0, "file_id": "f", "filename": "a"},
        {"run": 1, "file_id": "g", "filename": "b"},
    ]
