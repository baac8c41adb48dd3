"""What the commands print: rich tables for people on stdout, plain JSON for scripts, progress bars and
notes on stderr (so stdout stays the result)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from .models import FileInfo, ServiceStatus, ServiceSummary

# Not a terminal (a pipe, a file): wide enough that ids and names are never cut.
out = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
err = Console(stderr=True, highlight=False)

STATUS_STYLES = {"ok": "green", "error": "red", "running": "cyan", "pending": "yellow"}


def print_json(value: BaseModel | Iterable[BaseModel] | dict[str, Any] | list[Any]) -> None:
    """JSON on stdout exactly as the API gave it (models keep every field they were given)."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, dict):
        data = value
    else:
        data = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def print_json_line(value: BaseModel | dict[str, Any]) -> None:
    """One JSON document a line (a stream of changes)."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A line for the person on stderr (never mixed into a result on stdout)."""
    err.print(message, markup=False)


def plain(value: str) -> Text:
    """A value shown as it is: names with brackets are not rich markup."""
    return Text(value)


def size(length: int) -> str:
    return decimal(length)


def styled_status(status: str) -> str:
    return f"[{STATUS_STYLES.get(status, 'white')}]{status}[/]"


def runs(service: ServiceSummary) -> str:
    return f"{service.succeeded} ok, {service.failed} failed, {service.active} active of {service.total}"


def files_table(files: list[FileInfo]) -> None:
    table = Table("ID", "NAME", "SIZE", "UPLOADED", "SHA-256", box=None, header_style="bold")
    for item in files:
        digest = (item.sha256 or "")[:12]
        table.add_row(item.id, plain(item.filename), size(item.length), item.upload_date, digest)
    out.print(table)


def services_table(services: list[ServiceSummary]) -> None:
    table = Table(
        "ID", "IMAGE", "TYPE", "STATUS", "RUNS", "OUTPUTS", "CREATED", box=None, header_style="bold"
    )
    for service in services:
        table.add_row(
            service.id,
            plain(f"{service.image}:{service.version}"),
            service.job_type or "-",
            styled_status(service.status),
            runs(service),
            str(service.outputs),
            service.created_at,
        )
    out.print(table)


def status_view(status: ServiceStatus) -> None:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("id", status.id)
    facts.add_row("image", plain(f"{status.image}:{status.version}"))
    if status.description:
        facts.add_row("description", plain(status.description))
    facts.add_row("type", status.job_type or "-")
    facts.add_row("status", styled_status(status.status) + (f" ({status.phase})" if status.phase else ""))
    facts.add_row("runs", runs(status))
    if status.message:
        facts.add_row("message", plain(status.message))
    facts.add_row("created", status.created_at)
    if status.scenarios is not None:
        facts.add_row(
            "summary", "written" if status.summary is not None else "not yet (written when every run is done)"
        )
    out.print(facts)
    if status.scenarios:
        scenarios = Table("SCENARIO", "RUNS", "OK", "FAILED", "ACTIVE", box=None, header_style="bold")
        for group in status.scenarios:
            numbers = f"{group.runs[0]}-{group.runs[-1]}" if group.runs else "-"
            scenarios.add_row(
                plain(group.name), numbers, str(group.succeeded), str(group.failed), str(group.active)
            )
        out.print()
        out.print(scenarios)
    if status.output_files:
        outputs = Table("RUN", "FILE", "FILE ID", box=None, header_style="bold")
        for output in status.output_files:
            outputs.add_row(str(output.run), plain(output.filename), output.file_id)
        out.print()
        out.print(outputs)


def change_line(status: ServiceStatus, at: str) -> None:
    """One line of `status --watch`: the moment and the state."""
    line = Text.from_markup(f"{at}  {styled_status(status.status)}  ")
    line.append(f"{runs(status)}; outputs {status.outputs}")
    if status.message:
        line.append(f" ({status.message})")
    out.print(line)


def transfer_bar() -> Progress:
    """A byte progress bar on stderr (started by the caller, or by `transfer`)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


@contextmanager
def showing(bar: Progress) -> Iterator[Progress]:
    """Stop `bar` at the end; on a failure without its tasks, so that the error stays the only line."""
    try:
        yield bar
    except BaseException:
        for task in bar.task_ids:
            bar.remove_task(task)
        raise
    finally:
        bar.stop()


@contextmanager
def transfer(description: str, total: int | None) -> Iterator[Progress]:
    """A started bar with one task (task 0), for a transfer whose size is known before it starts."""
    bar = transfer_bar()
    with showing(bar):
        bar.add_task(description, total=total)
        bar.start()
        yield bar
