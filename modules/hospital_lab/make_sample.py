"""Writes sample_input.xlsx, the workbook that ships with the module:

    cd modules && python -m hospital_lab.make_sample [path]

A histopathology lab: specimens are booked in at reception, cut up, processed, embedded and sectioned,
stained and reported by a pathologist; urgent specimens go first. The file is byte-for-byte reproducible
(fixed timestamps inside the archive), so a change in it is a change of these figures.
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl

from .lab_config import SHEETS

SAMPLE = Path(__file__).with_name("sample_input.xlsx")
FIXED_TIME = datetime(2025, 1, 1)

RESOURCES = [
    ("reception", 2),
    ("cut_up_bench", 4),
    ("tissue_processor", 10),
    ("lab_technician", 4),
    ("stainer", 2),
    ("pathologist", 5),
]
STAGES = [
    ("booking_in", "reception", 2, 4, 8),
    ("cut_up", "cut_up_bench", 8, 12, 25),
    ("processing", "tissue_processor", 30, 45, 60),
    ("embedding_and_sectioning", "lab_technician", 10, 15, 25),
    ("staining", "stainer", 5, 8, 12),
    ("reporting", "pathologist", 10, 20, 40),
]
SAMPLE_TYPES = [("urgent", 1.5, 0), ("routine", 8.5, 1)]


def sample_workbook() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for sheet, rows in (("resources", RESOURCES), ("stages", STAGES), ("sample_types", SAMPLE_TYPES)):
        worksheet = workbook.create_sheet(sheet)
        worksheet.append(list(SHEETS[sheet]))
        for row in rows:
            worksheet.append(list(row))
    workbook.properties.creator = "dtpoc hospital_lab"
    workbook.properties.created = FIXED_TIME
    buffer = io.BytesIO()
    workbook.save(buffer)
    return _fixed_timestamps(buffer.getvalue())


def _fixed_timestamps(xlsx: bytes) -> bytes:
    """openpyxl stamps the save time into docProps/core.xml and every zip entry; pin both."""
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp.encode(), data)
            target.writestr(
                zipfile.ZipInfo(info.filename, FIXED_TIME.timetuple()[:6]), data, zipfile.ZIP_DEFLATED
            )
    return out.getvalue()


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE
    path.write_bytes(sample_workbook())
    print(f"wrote {path}")
