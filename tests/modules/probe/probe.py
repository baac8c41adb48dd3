"""A module for the platform's own tests: what it does is chosen by PROBE_MODE (standard library only).

write    write OUTPUT_FOLDER/probe.json: RUN_ID, RUN_INDEX, uid/gid, the environment (values of
         names with PASSWORD/TOKEN/SECRET as their sha256 only), every file under /input with its
         size and sha256
fail     print PROBE_MESSAGE to stderr and exit PROBE_EXIT_CODE (default 1)
many     write PROBE_FILES files (default 1000), every other one in a subfolder
sleep    sleep PROBE_SECONDS (default 30), then as write
lines    print PROBE_LINES lines (default 20) to stdout, "probe: line <i> of <n>", one every
         PROBE_INTERVAL seconds (default 1), then as write (run logs: streamed while the run runs)
serve    answer GET on PORT (default 8080) with a JSON of who answered and the path asked
connect  after PROBE_DELAY seconds (default 0), try a TCP connection to each host:port of PROBE_TARGET
         (comma-separated), write which succeeded into probe.json (NetworkPolicy and DNS tests)
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OUTPUT = Path(os.environ.get("OUTPUT_FOLDER") or "/output")
INPUT = Path(os.environ.get("INPUT_FOLDER") or "/input")
HIDDEN = ("PASSWORD", "TOKEN", "SECRET")
STARTED_AT = time.time()  # the host's clock too (one kernel): benchmarks time launch -> start from it


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def identity() -> dict[str, Any]:
    return {
        "run_id": os.environ.get("RUN_ID"),
        "run_index": os.environ.get("RUN_INDEX"),
        "service_id": os.environ.get("SERVICE_ID"),
        "hostname": socket.gethostname(),
        "started_at": STARTED_AT,
    }


def report() -> dict[str, Any]:
    env = {
        name: f"sha256:{sha256(value.encode())}" if any(h in name.upper() for h in HIDDEN) else value
        for name, value in sorted(os.environ.items())
    }
    inputs = {
        str(path.relative_to(INPUT)): {"size": path.stat().st_size, "sha256": sha256(path.read_bytes())}
        for path in sorted(INPUT.rglob("*"))
        if path.is_file()
    }
    return {**identity(), "uid": os.getuid(), "gid": os.getgid(), "env": env, "inputs": inputs}


def write(name: str, document: Any) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    partial = OUTPUT / f".{name}.partial"
    # written_at: the moment before the module exits (benchmarks time exit -> outputs stored from it).
    partial.write_text(json.dumps({**document, "written_at": time.time()}, indent=2) + "\n")
    partial.replace(OUTPUT / name)


def many() -> None:
    count = int(os.environ.get("PROBE_FILES") or 1000)
    for i in range(count):
        folder = OUTPUT / f"part_{i % 7}" if i % 2 else OUTPUT
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file_{i:05d}.txt").write_text(f"run {os.environ.get('RUN_INDEX')} file {i}\n")


def connect() -> dict[str, Any]:
    timeout = float(os.environ.get("PROBE_TIMEOUT") or 3)
    attempts = int(os.environ.get("PROBE_ATTEMPTS") or 3)
    time.sleep(float(os.environ.get("PROBE_DELAY") or 0))
    results: dict[str, Any] = {}
    for target in filter(None, (t.strip() for t in os.environ.get("PROBE_TARGET", "").split(","))):
        host, _, port = target.rpartition(":")
        result: dict[str, Any] = {"ok": False, "address": None, "error": None}
        for attempt in range(attempts):
            try:
                result["address"] = socket.gethostbyname(host)
                with socket.create_connection((host, int(port)), timeout=timeout):
                    result.update(ok=True, error=None)
                break
            except OSError as e:
                result["error"] = f"{type(e).__name__}: {e}"
                if attempt + 1 < attempts:
                    time.sleep(1)  # a Service's rules can lag its endpoint by a moment
        results[target] = result
    return {**identity(), "targets": results}


class Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({**identity(), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> int:
    mode = os.environ.get("PROBE_MODE", "write")
    print(f"probe: mode {mode}, run {os.environ.get('RUN_ID')}", flush=True)
    if mode == "write":
        write("probe.json", report())
    elif mode == "fail":
        print(os.environ.get("PROBE_MESSAGE") or "probe: failing on purpose", file=sys.stderr)
        return int(os.environ.get("PROBE_EXIT_CODE") or 1)
    elif mode == "many":
        many()
    elif mode == "sleep":
        time.sleep(float(os.environ.get("PROBE_SECONDS") or 30))
        write("probe.json", report())
    elif mode == "lines":
        count = int(os.environ.get("PROBE_LINES") or 20)
        interval = float(os.environ.get("PROBE_INTERVAL") or 1)
        for i in range(1, count + 1):
            print(f"probe: line {i} of {count}", flush=True)
            if i < count:
                time.sleep(interval)
        write("probe.json", report())
    elif mode == "serve":
        server = ThreadingHTTPServer(("", int(os.environ.get("PORT") or 8080)), Answer)
        print(f"probe: serving on port {server.server_address[1]}", flush=True)
        server.serve_forever()
    elif mode == "connect":
        write("probe.json", connect())
    else:
        print(f"probe: unknown PROBE_MODE {mode!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
