"""A real Mosquitto (Debian's) on a free loopback port with the Mosquitto component's mosquitto.conf and ACL:
the broker the MQTT tests run against (fixture `broker` in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.mosquitto import ACL_FILE, PASSWORD_FILE, mosquitto_acl, mosquitto_conf
from localdev import processes
from localdev.tools import Tools

PUBLISHER, PASSWORD = "publisher", "mqtt-Pa55word-test"
LOGIN = ("-u", PUBLISHER, "-P", PASSWORD)


class Broker:
    def __init__(self, tools: Tools, folder: Path) -> None:
        self.tools, self.folder, self.port = tools, folder, processes.free_port()
        conf = mosquitto_conf(self.port)
        # Loopback only in tests, and the pod's data folder becomes a temporary one.
        conf = conf.replace(f"listener {self.port}", f"listener {self.port} 127.0.0.1")
        conf = conf.replace("/mosquitto/data/", f"{folder}/data/")
        conf = conf.replace(PASSWORD_FILE, str(folder / "passwd")).replace(ACL_FILE, str(folder / "acl"))
        (folder / "acl").write_text(mosquitto_acl(PUBLISHER))
        # As the pod's init container makes it.
        subprocess.run(
            ["mosquitto_passwd", "-c", "-b", str(folder / "passwd"), PUBLISHER, PASSWORD],
            check=True,
            capture_output=True,
        )
        # Started as root (CI is), mosquitto would switch to its own user, which cannot write pytest's
        # private temporary folder; in the pod it runs as its own user from the start.
        conf += "user root\n" if os.geteuid() == 0 else ""
        (folder / "data").mkdir(exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(conf)
        self.pid: int | None = None

    def start(self) -> None:
        self.pid = processes.start([self.tools.mosquitto, "-c", self.conf], self.folder / "mosquitto.log")
        processes.wait_until(lambda: processes.port_open(self.port), 10, "mosquitto")

    def stop(self) -> None:
        if self.pid:
            processes.stop(self.pid)
            self.pid = None

    def client(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [name, "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True, text=True, timeout=20
        )
