"""FerretDB 1.x with its SQLite backend: a real MongoDB wire-protocol server on a free loopback port."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import processes
from .tools import Tools


@dataclass
class FerretDB:
    state_dir: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @classmethod
    def start(cls, tools: Tools, state_dir: Path, port: int | None = None) -> FerretDB:
        data = state_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        port = port or processes.free_port()
        pid = processes.start(
            [
                tools.ferretdb,
                f"--sqlite-url=file:{data}/",  # must name an existing directory and end in /
                f"--listen-addr=127.0.0.1:{port}",
                "--log-level=warn",
            ],
            state_dir / "ferretdb.log",
        )
        server = cls(state_dir, port, pid)
        try:
            processes.wait_until(lambda: processes.port_open(port), 30, f"FerretDB on port {port}")
        except TimeoutError:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        processes.stop(self.pid)
