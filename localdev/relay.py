"""A loopback relay from the host into an instance's network namespace: the host listens on
127.0.0.1 only, the namespace side connects to an address inside the namespace. Two socat processes
meet at a Unix socket (a file: both network namespaces see it), so no connection forks a `nsenter`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import processes
from .netns import NetworkNamespace


@dataclass
class Relay:
    name: str
    host_port: int
    target: str  # host:port inside the namespace
    pids: list[int]

    @classmethod
    def start(
        cls,
        name: str,
        ns: NetworkNamespace,
        target: str,
        socket_dir: Path,
        log_dir: Path,
        host_port: int | None = None,
    ) -> Relay:
        sock = socket_dir / f"{name}.sock"
        sock.unlink(missing_ok=True)
        port = host_port or processes.free_port()
        inner = processes.start(
            [*ns.enter(), "socat", f"UNIX-LISTEN:{sock},fork,mode=600", f"TCP:{target}"],
            log_dir / f"relay-{name}.log",
        )
        processes.wait_until(sock.exists, 10, f"the relay socket {sock}")
        outer = processes.start(
            ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{sock}"],
            log_dir / f"relay-{name}.log",
        )
        relay = cls(name, port, target, [outer, inner])
        try:
            processes.wait_until(lambda: processes.port_open(port), 10, f"the relay {name} on {port}")
        except TimeoutError:
            relay.stop()
            raise
        return relay

    def stop(self) -> None:
        for pid in self.pids:
            if processes.alive(pid):
                processes.stop(pid)
