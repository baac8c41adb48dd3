"""A network namespace of the local environment's own: the real node's pod, Service and node addresses
live only in here (the network rule of ../shared/NODE.md), and the host reaches in through loopback
relays. Each local instance makes its own, so the same private ranges serve every instance."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# Inside every instance's namespace (never routed anywhere outside it).
NODE_IP = "10.245.0.1"
PEER_IP = "10.245.0.2"  # the other end of the node's veth: only a default route's gateway
POD_CIDR = "10.244.0.0/24"
CLUSTER_POD_CIDR = "10.244.0.0/16"
# Each instance's sockets live in RUN_ROOT/<instance>: a short path (Unix sockets allow 108 bytes).
RUN_ROOT = Path("/run/dtpoc")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@dataclass(frozen=True)
class NetworkNamespace:
    name: str

    @property
    def path(self) -> Path:
        return Path("/var/run/netns") / self.name

    def enter(self) -> list[str]:
        """The command prefix that runs a program in here. `nsenter --net`, not `ip netns exec`: the
        latter also makes a mount namespace with a fresh /sys that hides the cgroup mounts."""
        return ["nsenter", f"--net={self.path}"]

    def run(self, *command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.enter(), *command], capture_output=True, text=True, check=check, timeout=timeout
        )

    @classmethod
    def create(cls, name: str) -> NetworkNamespace:
        """The namespace with `lo` up and a veth pair standing for the node's interface (this kernel has
        no `dummy` link type); the node address has a default route, so programs that look for "the"
        interface (the apiserver's advertise address, the kubelet's node IP) find it."""
        ns = cls(name)
        _ip("netns", "add", name)
        try:
            for command in (
                ("ip", "link", "set", "lo", "up"),
                ("ip", "link", "add", "node0", "type", "veth", "peer", "name", "node0-peer"),
                ("ip", "addr", "add", f"{NODE_IP}/24", "dev", "node0"),
                ("ip", "link", "set", "node0", "up"),
                ("ip", "link", "set", "node0-peer", "up"),
                ("ip", "route", "add", "default", "via", PEER_IP, "dev", "node0"),
                ("sysctl", "-qw", "net.ipv4.ip_forward=1"),
            ):
                ns.run(*command)
        except BaseException:
            ns.delete()
            raise
        return ns

    def exists(self) -> bool:
        return self.path.exists()

    def delete(self) -> None:
        """Removing the namespace removes its links, routes and iptables rules with it."""
        if self.exists():
            _ip("netns", "del", self.name, check=False)
