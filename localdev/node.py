"""A real Kubernetes node beside kwok's simulated ones: a containerd of its own with CRI, runc, Debian's
CNI plugins, CoreDNS, the kubelet and kube-proxy (v1.36, built with the control plane) and a local
NetworkPolicy enforcer, all inside the instance's network namespace, where the control plane runs too.

Everything is per instance (several can run side by side): the namespace, sockets, containerd's root and
state, the kubelet's root dir, pod logs, cgroup root, CNI address store. Daemons are started and stopped
by pid; `stop` sweeps what a crashed run could leave (shims of our containerd, pod network namespaces,
mounts under our folders, our cgroups).

NetworkPolicies are enforced by kube-router's firewall alone (iptables + ipset), run here as a process:
kube-network-policies needs nftables' `queue` statement, which this kernel lacks (../shared/NODE.md). It is
a local enforcer for tests, never something the program deploys.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import processes
from .cluster import LocalCluster
from .netns import CLUSTER_POD_CIDR, NODE_IP, POD_CIDR, NetworkNamespace
from .oci import write_image
from .tools import Tools

NODE_NAME = "dtpoc-node"
NODE_LABEL = "dtpoc.io/node"  # = "real" on this node; components choose real or simulated by it
SIMULATED_TAINT = "kwok.x-k8s.io/node=fake"  # what the stack's simulated pieces tolerate
CTR_NAMESPACE = "k8s.io"
BUSYBOX_REF = "docker.io/library/busybox:1.36"  # containerd's namespace for the CRI's images and containers
CGROUP_V1 = Path("/sys/fs/cgroup")
_DAEMONS = ("containerd", "coredns", "kubelet", "kube-proxy", "kube-router")


@dataclass
class RealNode:
    instance: str
    ns: NetworkNamespace
    state_dir: Path  # containerd's root, the kubelet's root dir, logs
    run_dir: Path  # short path: sockets (Unix socket paths are limited to 108 bytes)
    tools: Tools
    pids: dict[str, int] = field(default_factory=dict)

    # -- where things are -------------------------------------------------------------------------
    @property
    def containerd_address(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def cgroup_root(self) -> str:
        return f"/dtpoc-{self.instance}"

    def _path(self, *parts: str) -> Path:
        return self.state_dir.joinpath(*parts)

    # -- start ------------------------------------------------------------------------------------
    @classmethod
    def start(
        cls, tools: Tools, cluster: LocalCluster, instance: str, state_dir: Path, run_dir: Path
    ) -> RealNode:
        assert cluster.netns is not None, "the real node joins a control plane in its network namespace"
        node = cls(instance, cluster.netns, state_dir, run_dir, tools)
        state_dir.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            node._make_cgroup_root()
            node._start_containerd()
            node.import_image(tools.pause_image)
            node.import_image(node._busybox_image())
            node._start("coredns", [tools.coredns, "-conf", node._write_corefile(cluster)])
            node._start_kubelet(cluster)
            node._start("kube-proxy", [tools.kube_proxy, f"--config={node._write_kube_proxy(cluster)}"])
            node._wait_ready(cluster)
            cluster.kubectl("uncordon", NODE_NAME)  # a node of the same name may have been drained before
            node._taint_simulated_nodes(cluster)
            node._start_policy_enforcer(cluster)
        except BaseException:
            node.stop(cluster)
            raise
        return node

    def _start(self, name: str, command: list[str | Path]) -> None:
        self.pids[name] = processes.start([*self.ns.enter(), *command], self._path("logs", f"{name}.log"))

    def _make_cgroup_root(self) -> None:
        """The kubelet's cgroup root, in every v1 hierarchy; cpuset needs its cpus and mems set before
        any task can join below it."""
        for hierarchy in CGROUP_V1.iterdir():
            if not (hierarchy / "cgroup.procs").exists():
                continue
            folder = hierarchy / self.cgroup_root.lstrip("/")
            folder.mkdir(exist_ok=True)
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (folder / knob).exists() and not (folder / knob).read_text().strip():
                    (folder / knob).write_text((hierarchy / knob).read_text())

    def _start_containerd(self) -> None:
        cni = self._path("cni")
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        (cni / "net.d" / "10-pods.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "pods",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": "cni0",  # inside the namespace: the same name in every instance
                            "isGateway": True,
                            "ipMasq": True,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_CIDR}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(cni / "ipam"),  # addresses handed out: per instance
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                        {"type": "firewall"},
                        {"type": "loopback"},
                    ],
                }
            )
        )
        config = self._path("containerd", "config.toml")
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            textwrap.dedent(
                f"""\
                version = 2
                root = "{self._path("containerd", "root")}"
                state = "{self.run_dir / "containerd-state"}"
                [grpc]
                  address = "{self.containerd_address}"
                [ttrpc]
                  address = "{self.containerd_address}.ttrpc"
                [plugins]
                  [plugins."io.containerd.internal.v1.opt"]
                    path = "{self._path("containerd", "opt")}"
                  [plugins."io.containerd.grpc.v1.cri"]
                    sandbox_image = "{self.tools.pause_ref}"
                    # root lacks CAP_SYS_RESOURCE here: without this every sandbox fails on oom_score_adj
                    restrict_oom_score_adj = true
                    stream_server_address = "127.0.0.1"
                    [plugins."io.containerd.grpc.v1.cri".cni]
                      bin_dir = "/usr/lib/cni"
                      conf_dir = "{cni / "net.d"}"
                    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                      runtime_type = "io.containerd.runc.v2"
                """
            )
        )
        self._start("containerd", ["containerd", "--config", config])
        processes.wait_until(self._containerd_serves, 30, "containerd to serve", interval=0.2)

    def _containerd_serves(self) -> bool:
        return self.ctr("version", check=False).returncode == 0

    def _write_corefile(self, cluster: LocalCluster) -> Path:
        # No `forward`: pods resolve the cluster's names only, never through the host's resolver.
        corefile = self._path("Corefile")
        corefile.write_text(
            textwrap.dedent(
                f"""\
                .:53 {{
                    bind {NODE_IP}
                    errors
                    kubernetes cluster.local in-addr.arpa ip6.arpa {{
                        kubeconfig {cluster.inner_kubeconfig}
                        pods insecure
                        fallthrough in-addr.arpa ip6.arpa
                    }}
                    cache 10
                }}
                """
            )
        )
        return corefile

    def _start_kubelet(self, cluster: LocalCluster) -> None:
        resolv = self._path("resolv.conf")
        resolv.write_text(f"nameserver {NODE_IP}\n")
        config = self._path("kubelet.json")
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    # cgroup v1 here; the kubelet on containerd 1.x falls back to this driver setting
                    "failCgroupV1": False,
                    "cgroupDriver": "cgroupfs",
                    "cgroupRoot": self.cgroup_root,
                    "containerRuntimeEndpoint": f"unix://{self.containerd_address}",
                    # only the apiserver (a client certificate of the cluster's CA) may use this kubelet
                    "authentication": {
                        "anonymous": {"enabled": False},
                        "webhook": {"enabled": True},
                        "x509": {"clientCAFile": str(cluster.pki / "ca.crt")},
                    },
                    "authorization": {"mode": "Webhook"},
                    "clusterDomain": "cluster.local",
                    "clusterDNS": [NODE_IP],
                    "resolvConf": str(resolv),
                    "failSwapOn": False,
                    "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE to lower it
                    "readOnlyPort": 0,
                    "address": NODE_IP,
                    "healthzBindAddress": "127.0.0.1",
                    "podLogsDir": str(self._path("pod-logs")),
                    "enforceNodeAllocatable": [],
                    "evictionHard": {
                        "memory.available": "100Mi",
                        "nodefs.available": "1%",
                        "imagefs.available": "1%",
                    },
                    "imageGCHighThresholdPercent": 100,
                    "serializeImagePulls": False,
                }
            )
        )
        self._start(
            "kubelet",
            [
                self.tools.kubelet,
                f"--config={config}",
                f"--kubeconfig={cluster.inner_kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--node-labels={NODE_LABEL}=real",
                f"--root-dir={self._path('kubelet')}",
                f"--cert-dir={self._path('kubelet-pki')}",
            ],
        )

    def _write_kube_proxy(self, cluster: LocalCluster) -> Path:
        config = self._path("kube-proxy.json")
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                    "kind": "KubeProxyConfiguration",
                    "mode": "iptables",
                    "clusterCIDR": CLUSTER_POD_CIDR,
                    "clientConnection": {"kubeconfig": str(cluster.inner_kubeconfig)},
                    "hostnameOverride": NODE_NAME,
                    "bindAddress": NODE_IP,
                    "healthzBindAddress": "127.0.0.1:10256",
                    "metricsBindAddress": "127.0.0.1:10249",
                    "conntrack": {"maxPerCore": 0},  # leave the (machine-wide) conntrack table size alone
                }
            )
        )
        return config

    def _start_policy_enforcer(self, cluster: LocalCluster) -> None:
        """kube-router's firewall only (no routing, no service proxy); it finds its node by name, so it
        starts once the node is registered, and is ready when its forward chain exists."""
        self._start(
            "kube-router",
            [
                self.tools.kube_router,
                f"--kubeconfig={cluster.inner_kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--metrics-port=0",
                "--health-port=0",
            ],
        )

        def enforcing() -> bool:
            self._check_alive()
            return self.ns.run("iptables", "-S", "KUBE-ROUTER-FORWARD", check=False).returncode == 0

        processes.wait_until(enforcing, 60, "the NetworkPolicy enforcer's rules", interval=0.5)

    def _taint_simulated_nodes(self, cluster: LocalCluster) -> None:
        """kwok's nodes carry no taint by default: every pod would be as likely to land on one and
        "succeed" without running. Tainted, they take only the pieces that choose to be simulated."""
        for node in cluster.kubectl("get", "nodes", "-o", "name").stdout.split():
            name = node.removeprefix("node/")
            if name != NODE_NAME:
                cluster.kubectl("taint", "nodes", "--overwrite", name, f"{SIMULATED_TAINT}:NoSchedule")

    def _check_alive(self) -> None:
        for name, pid in self.pids.items():
            if not processes.alive(pid):
                log = self._path("logs", f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} exited while the node was starting:\n{log}")

    def _wait_ready(self, cluster: LocalCluster) -> None:
        def ready() -> bool:
            result = cluster.kubectl(
                "get", "node", NODE_NAME, "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False,
            )  # fmt: skip
            self._check_alive()
            return result.stdout.strip() == "True"

        processes.wait_until(ready, 120, f"node {NODE_NAME} to be Ready", interval=0.5)

    # -- use --------------------------------------------------------------------------------------
    def ctr(
        self, *args: str, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["ctr", f"--address={self.containerd_address}", f"--namespace={CTR_NAMESPACE}", *args],
            capture_output=True,
            check=check,
            input=input,
            timeout=600,
        )

    def import_image(self, tarball: Path) -> None:
        """An image tarball (OCI layout or `docker save`) into the node's containerd: pods then use it
        with imagePullPolicy IfNotPresent (nothing can be pulled here)."""
        self.ctr("images", "import", "--no-unpack=false", str(tarball))

    def _busybox_image(self) -> Path:
        """Debian's static busybox as `busybox:1.36`, the image the components' hostPath owner init
        containers name (nothing can be pulled); also the node tests' shell, wget-less (see the tests)."""
        return write_image(
            Path("/bin/busybox"), "/bin/busybox", BUSYBOX_REF, self._path("busybox.oci.tar"),
            user="0:0", links=("/bin/sh", "/bin/chown", "/bin/nc", "/bin/nslookup", "/bin/sleep"),
        )  # fmt: skip

    # -- stop -------------------------------------------------------------------------------------
    def stop(self, cluster: LocalCluster | None) -> None:
        """Drain, then stop the daemons, then sweep what is left. Safe to call on a half-started node."""
        if cluster is not None and self.pids.get("kubelet") and processes.alive(self.pids["kubelet"]):
            self._drain(cluster)
        for name in ("kube-router", "kube-proxy", "kubelet", "coredns"):
            self._stop_daemon(name)
        if self.pids.get("containerd") and processes.alive(self.pids["containerd"]):
            self._remove_containers()
        self._stop_daemon("containerd")
        self._stop_shims()
        self._unmount_all()
        self._remove_cgroups()

    def _stop_daemon(self, name: str) -> None:
        pid = self.pids.get(name)
        if pid and processes.alive(pid):
            processes.stop(pid, timeout=15)

    def _drain(self, cluster: LocalCluster) -> None:
        """Cordon (no new pods), delete this node's pods, wait until containerd runs no container."""
        cluster.kubectl("cordon", NODE_NAME, check=False)
        cluster.kubectl(
            "delete", "pods", "--all-namespaces", f"--field-selector=spec.nodeName={NODE_NAME}",
            "--grace-period=2", "--wait=false", check=False,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.ctr("tasks", "ls", "-q", check=False).stdout.strip():
            time.sleep(0.5)

    def _remove_containers(self) -> None:
        """Whatever the kubelet left running: kill the tasks, remove their network namespaces."""
        for task in self.ctr("tasks", "ls", "-q", check=False).stdout.decode().split():
            self.ctr("tasks", "kill", "--signal=SIGKILL", task, check=False)
        time.sleep(1)
        for container in self.ctr("containers", "ls", "-q", check=False).stdout.decode().split():
            info = self.ctr("containers", "info", container, check=False).stdout
            with contextlib.suppress(ValueError):
                for ns in json.loads(info or b"{}").get("Spec", {}).get("linux", {}).get("namespaces", []):
                    path = ns.get("path", "")
                    if ns.get("type") == "network" and path.startswith("/var/run/netns/cni-"):
                        subprocess.run(["ip", "netns", "del", Path(path).name], capture_output=True)
            self.ctr("tasks", "delete", "--force", container, check=False)
            self.ctr("containers", "delete", container, check=False)

    def _stop_shims(self) -> None:
        """Shims outlive containerd; ours name our containerd's socket on their command line."""
        needle = str(self.containerd_address).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes()
                if b"containerd-shim" in cmdline and needle in cmdline:
                    processes.stop(int(proc.name), timeout=5)

    def _unmount_all(self) -> None:
        roots = (str(self.state_dir), str(self.run_dir))
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(roots)), reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)

    def _remove_cgroups(self) -> None:
        for hierarchy in CGROUP_V1.iterdir():
            folder = hierarchy / self.cgroup_root.lstrip("/")
            if folder.is_dir():
                for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                    if sub.is_dir():
                        with contextlib.suppress(OSError):
                            sub.rmdir()
                with contextlib.suppress(OSError):
                    folder.rmdir()
