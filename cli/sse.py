"""Server-Sent Events as the API sends them (GET /service/{id}/events), parsed from a response's lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerEvent:
    kind: str  # `event:` ("message" when the server names none)
    id: str | None
    data: str


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events in `lines` (without their line ends), as each one completes; comments and `retry`
    advice are skipped."""
    kind, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(kind, event_id, "\n".join(data))
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
