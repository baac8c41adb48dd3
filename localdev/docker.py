"""A Docker engine of our own for image builds: Debian's dockerd with its own data, exec root, socket and
managed containerd, started and stopped by pid, so that several can run side by side.

NODE.md's network rule: no default bridge, no iptables or masquerading; builds use the host network.
The CLI is Debian's /usr/bin/docker (20.10: BuildKit built in); another `docker` first on PATH may be a
newer CLI that refuses BuildKit without the buildx plugin.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import processes

DOCKERD = Path("/usr/sbin/dockerd")
DOCKER_CLI = Path("/usr/bin/docker")
# Unix socket paths must stay under 108 bytes (sun_path); pytest's temp paths are long, so sockets and
# the exec root (containerd's socket lives there) go into a short folder of their own.
SHORT_ROOT = Path("/tmp")  # noqa: S108 - a fresh 0700 folder with a random name, made with mkdir


class DockerError(RuntimeError):
    pass


def mounts_under(*roots: Path) -> list[Path]:
    """Mount points at or below any of `roots`, deepest first (the order to unmount them in)."""
    prefixes = [str(r.resolve()) for r in roots]
    found: list[Path] = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            # Field 5 is the mount point; spaces and the like are octal escapes.
            point = line.split()[4].encode().decode("unicode_escape")
            if any(point == p or point.startswith(p + "/") for p in prefixes):
                found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_all(*roots: Path) -> None:
    for point in mounts_under(*roots):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def remove_cgroups(name: str, root: Path = Path("/sys/fs/cgroup")) -> None:
    """Remove the cgroup `name` (a top-level one of ours) from every hierarchy, children first (cgroup
    folders are removed with rmdir once empty of processes)."""
    for top in root.glob(f"*/{name}"):
        for folder, _, _ in sorted(os.walk(top), key=lambda entry: len(entry[0]), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def _ping(sock: Path) -> bool:
    """The Engine API's /_ping answers OK once the daemon serves requests."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1)
            conn.connect(str(sock))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = conn.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")


@dataclass
class Dockerd:
    """One running dockerd. `state_dir` keeps its images and build cache (data root) and its log;
    `run_dir` (short, under /tmp) its socket, pid file and exec root."""

    state_dir: Path
    run_dir: Path
    pid: int

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return self.state_dir / "data"

    @property
    def exec_root(self) -> Path:
        return self.run_dir / "exec"

    @property
    def cgroup_parent(self) -> str:
        return self.run_dir.name

    @property
    def containerd_socket(self) -> Path:
        """The containerd dockerd manages (namespace moby is Docker's; CRI is off in it)."""
        return self.exec_root / "containerd" / "containerd.sock"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "dockerd.log"

    @classmethod
    def start(cls, state_dir: Path, timeout: float = 60) -> Dockerd:
        state_dir = state_dir.resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        run_dir = SHORT_ROOT / f"dtpoc-{secrets.token_hex(4)}"
        run_dir.mkdir(mode=0o700)
        config = run_dir / "daemon.json"
        # An empty config of our own: the machine's /etc/docker/daemon.json (if any) is for its own daemon.
        config.write_text(json.dumps({}))
        daemon = cls(state_dir, run_dir, pid=0)
        daemon.data_root.mkdir(exist_ok=True)
        daemon.pid = processes.start(
            [
                DOCKERD,
                f"--config-file={config}",
                f"--data-root={daemon.data_root}",
                f"--exec-root={daemon.exec_root}",
                f"--pidfile={run_dir / 'dockerd.pid'}",
                f"--host={daemon.host}",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--storage-driver=overlay2",
                # Containers of this daemon under a cgroup of their own, not the machine's /docker.
                f"--cgroup-parent=/{daemon.cgroup_parent}",
            ],
            daemon.log_file,
        )
        try:
            processes.wait_until(
                lambda: _ping(daemon.socket) or not processes.alive(daemon.pid),
                timeout,
                f"dockerd on {daemon.socket}",
                interval=0.2,
            )
            if not processes.alive(daemon.pid):
                raise DockerError(f"dockerd exited at start; see {daemon.log_file}:\n{daemon.log_tail()}")
        except BaseException:
            daemon.stop()
            raise
        return daemon

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- the CLI --------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment for Debian's docker CLI talking to this daemon, BuildKit on."""
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "1"}

    def docker(
        self, *args: str, check: bool = True, timeout: float = 1800, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(
            [str(DOCKER_CLI), *args], env=self.env(), capture_output=True, timeout=timeout, input=input
        )
        if check and result.returncode != 0:
            raise DockerError(
                f"docker {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')[-4000:]}\n{result.stderr.decode(errors='replace')}"
            )
        return result

    def image_exists(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False, timeout=60).returncode == 0

    # --- stop -----------------------------------------------------------------------------------------

    def _managed_containerd_pid(self) -> int | None:
        pidfile = self.exec_root / "containerd" / "containerd.pid"
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 30) -> None:
        """Stop the daemon (its running containers stop with it) and the containerd it manages, by pid;
        then unmount whatever is left under its folders and remove the short run folder."""
        containerd_pid = self._managed_containerd_pid()
        if self.pid:
            processes.stop(self.pid, timeout=timeout)
        # dockerd stops its containerd on a clean exit; after a SIGKILL it may not have.
        if containerd_pid is not None and processes.alive(containerd_pid):
            processes.stop(containerd_pid, timeout=timeout)
        unmount_all(self.run_dir, self.data_root)
        remove_cgroups(self.cgroup_parent)
        shutil.rmtree(self.run_dir, ignore_errors=True)
