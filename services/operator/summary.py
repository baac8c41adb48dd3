"""A study's summary, written once when every run is finished and collected.

From what was collected (the record's `output_files` and GridFS, so the summary says what the API
serves): each run's KPI JSON (services.shared.study.kpi_file_of) is read, bounded in size, into
services.operator.kpi_table; its JSON and CSV are stored in GridFS under ids derived from the service
id (`summary_file_id`: a second attempt finds them and stores nothing twice), then ONE guarded update
sets the record's `study_summary` (only where none is set yet). A run that failed, whose outputs were
refused, or whose KPI JSON is missing, too large or not JSON, is a row with a note and no KPIs: the
summary is always written, so a study always settles.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from services.shared.files import FileStore, summary_file_id
from services.shared.names import RECORDS_DATABASE
from services.shared.records import OutputFile, SummaryFiles, parse_output_files, services_collection
from services.shared.study import SUMMARY_CSV, SUMMARY_JSON, kpi_file_of, run_number

from .kpi_table import FAILED, SUCCEEDED, RunKpis, StudyTable, flatten_kpis
from .outputs import FAILED as FAILED_RUNS
from .outputs import OUTPUT_FILES, REJECTED
from .study import Study

log = logging.getLogger(__name__)

STUDY_SUMMARY = "study_summary"
_CONTENT_TYPES = {SUMMARY_JSON: "application/json", SUMMARY_CSV: "text/csv"}


class SummaryWriter:
    def __init__(
        self, client: Any, store: FileStore, max_kpi_bytes: int, records_database: str = RECORDS_DATABASE
    ) -> None:
        self.records = services_collection(client, records_database)
        self.store = store
        self.max_kpi_bytes = max_kpi_bytes

    async def write_once(self, sid: str, study: Study) -> SummaryFiles | None:
        """The study's summary, written now unless it already was; None when the record is gone."""
        oid = ObjectId(sid)
        projection = {STUDY_SUMMARY: 1, OUTPUT_FILES: 1, FAILED_RUNS: 1, REJECTED: 1}
        document = await self.records.find_one({"_id": oid}, projection=projection)
        if document is None:
            return None
        if document.get(STUDY_SUMMARY):
            return SummaryFiles.model_validate(document[STUDY_SUMMARY])
        table = await self._table(sid, study, document)
        contents = {SUMMARY_JSON: table.to_json(), SUMMARY_CSV: table.to_csv()}
        files = {name: summary_file_id(sid, name) for name in contents}
        missing = await self.store.not_yet_stored(list(files.values()))
        for name, file_id in files.items():
            if file_id in missing:
                metadata = {"service_id": sid, "kind": "summary", "content_type": _CONTENT_TYPES[name]}
                await self.store.upload_with_id(file_id, name, contents[name], metadata=metadata)
        summary = SummaryFiles(
            json_file_id=str(files[SUMMARY_JSON]),
            csv_file_id=str(files[SUMMARY_CSV]),
            created_at=datetime.now(UTC),
        )
        guard = {"_id": oid, STUDY_SUMMARY: {"$exists": False}}
        result = await self.records.update_one(guard, {"$set": {STUDY_SUMMARY: summary.model_dump()}})
        if not result.matched_count:  # written meanwhile (the same files), or the record is gone
            again = await self.records.find_one({"_id": oid}, projection={STUDY_SUMMARY: 1})
            if again is None or not again.get(STUDY_SUMMARY):
                return None
            return SummaryFiles.model_validate(again[STUDY_SUMMARY])
        log.info(
            "service %s: study summary written (%d runs, %d KPIs)", sid, len(table.runs), len(table.columns)
        )
        return summary

    async def _table(self, sid: str, study: Study, document: dict[str, Any]) -> StudyTable:
        outputs: dict[int, list[OutputFile]] = {}
        for entry in parse_output_files(document.get(OUTPUT_FILES)):
            output = OutputFile.model_validate(entry)
            outputs.setdefault(output.run, []).append(output)
        failed = set(document.get(FAILED_RUNS) or ())
        refused = {str(k): str(v) for k, v in (document.get(REJECTED) or {}).items()}
        rows = []
        for k, scenario in enumerate(study.scenarios):
            for replication in range(study.reps):
                run = run_number(k, replication, study.reps)
                if run in failed:
                    reason = refused.get(str(run))
                    note = f"outputs refused: {reason}" if reason else "the run failed"
                    rows.append(RunKpis(run, scenario.name, replication, FAILED, note=note))
                    continue
                rows.append(await self._row(run, scenario.name, replication, outputs.get(run, [])))
        return StudyTable.build(sid, study.reps, [s.name for s in study.scenarios], rows)

    async def _row(self, run: int, scenario: str, replication: int, outputs: list[OutputFile]) -> RunKpis:
        chosen = kpi_file_of([output.filename for output in outputs])
        if chosen is None:
            missing = "no KPI JSON: neither kpis.json nor a single .json output"
            return RunKpis(run, scenario, replication, SUCCEEDED, note=missing)
        output = next(o for o in outputs if o.filename == chosen)
        content, problem = await self._read(output)
        if content is None:
            return RunKpis(run, scenario, replication, SUCCEEDED, source=chosen, note=problem)
        try:
            document = json.loads(content)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            unreadable = f"{chosen} is not JSON: {' '.join(str(exc).split())[:200]}"
            return RunKpis(run, scenario, replication, SUCCEEDED, source=chosen, note=unreadable)
        kpis = flatten_kpis(document)
        empty = None if kpis else f"{chosen} holds no KPIs (no object of scalar values)"
        return RunKpis(run, scenario, replication, SUCCEEDED, source=chosen, kpis=kpis, note=empty)

    async def _read(self, output: OutputFile) -> tuple[bytes | None, str | None]:
        """The stored file's bytes, or None and why not (gone, larger than the limit)."""
        oid = ObjectId(output.file_id) if ObjectId.is_valid(output.file_id) else output.file_id
        doc = await self.store.files.find_one({"_id": oid})
        if doc is None:
            return None, f"{output.filename} is no longer stored"
        if int(doc["length"]) > self.max_kpi_bytes:
            return None, f"{output.filename} is larger than {self.max_kpi_bytes} bytes; not read"
        return b"".join([chunk async for chunk in self.store.iter_chunks(doc)]), None
