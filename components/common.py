"""Helpers every component shares: labels, env and probe builders, resources, security contexts, and a
small "Deployment + Service (+ Ingress)" builder. Defined once here so the pieces stay short."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from services.shared.names import PART_OF, PLATFORM_APP_LABEL

MANAGED_BY = "pulumi"
# Our own images (operator, API) run as this user; their Dockerfiles create it.
APP_UID = 10001

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_dns_label(value: str, what: str) -> str:
    """A Kubernetes object name usable as a DNS label (Service names, namespaces)."""
    if not value or len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{what} must be a DNS label (lowercase letters, digits, '-'; at most 63), got {value!r}"
        )
    return value


def labels(name: str, component: str) -> dict[str, str]:
    """The Kubernetes recommended labels for one piece of the platform, and the platform-only app label."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        PLATFORM_APP_LABEL: name,
    }


def selector_labels(name: str) -> dict[str, str]:
    """The stable subset used in selectors (selectors are immutable, so they carry no version). It holds
    the platform-only key: module pods, labelled by the operator, never carry it, so a module image named
    like a platform app (`.../influxdb`) is never selected."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF, PLATFORM_APP_LABEL: name}


def child_options(
    parent: pulumi.Resource, opts: pulumi.ResourceOptions | None = None
) -> pulumi.ResourceOptions:
    """Options for a component's children: parented to it, and waiting for whatever the component was told
    to wait for (`depends_on` on a component does not reach its children by itself)."""
    child = pulumi.ResourceOptions(parent=parent)
    if opts is not None and opts.depends_on is not None:
        child = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=opts.depends_on))
    return child


def meta(
    name: str,
    namespace: str | None,
    component: str,
    app: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> k8s.meta.v1.ObjectMetaArgs:
    """Metadata with an explicit name (no random suffix) and the recommended labels."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels=labels(app or name, component),
        annotations=dict(annotations) if annotations else None,
    )


# Keys of every username/password Secret the platform makes (the images' own variables read them).
USERNAME_KEY = "username"
PASSWORD_KEY = "password"  # noqa: S105 (a key name, not a value)


def credentials_secret(
    resource_name: str,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    username: pulumi.Input[str],
    password: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    **more: pulumi.Input[str],
) -> k8s.core.v1.Secret:
    """An Opaque Secret of a username and a password, plus `more` secret keys; the values are marked
    secret, so the stack's state keeps them encrypted."""
    return k8s.core.v1.Secret(
        resource_name,
        metadata=metadata,
        type="Opaque",
        string_data={
            USERNAME_KEY: username,
            PASSWORD_KEY: pulumi.Output.secret(password),
            **{key: pulumi.Output.secret(value) for key, value in more.items()},
        },
        opts=opts,
    )


# --- environment ------------------------------------------------------------------------------------


def env(name: str, value: pulumi.Input[str]) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(name=name, value=value)


def secret_env(name: str, secret_name: pulumi.Input[str], key: str) -> k8s.core.v1.EnvVarArgs:
    """An env var read from a Secret by the kubelet: the value never appears in the pod spec."""
    return k8s.core.v1.EnvVarArgs(
        name=name,
        value_from=k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret_name, key=key)
        ),
    )


def field_env(name: str, field_path: str) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(
        name=name,
        value_from=k8s.core.v1.EnvVarSourceArgs(
            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=field_path)
        ),
    )


def env_list(values: Mapping[str, pulumi.Input[str]]) -> list[k8s.core.v1.EnvVarArgs]:
    return [env(k, v) for k, v in values.items()]


# --- probes, resources, security --------------------------------------------------------------------


def http_probe(
    path: str, port: int, initial_delay: int = 5, period: int = 15, failures: int = 3
) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=port),
        initial_delay_seconds=initial_delay,
        period_seconds=period,
        timeout_seconds=5,
        failure_threshold=failures,
    )


def tcp_probe(
    port: int, initial_delay: int = 5, period: int = 15, failures: int = 3
) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=port),
        initial_delay_seconds=initial_delay,
        period_seconds=period,
        timeout_seconds=5,
        failure_threshold=failures,
    )


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container."""

    cpu_request: str = "50m"
    memory_request: str = "64Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"

    def args(self) -> k8s.core.v1.ResourceRequirementsArgs:
        return k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": self.cpu_request, "memory": self.memory_request},
            limits={"cpu": self.cpu_limit, "memory": self.memory_limit},
        )


SMALL = Resources()
MEDIUM = Resources("100m", "256Mi", "1", "1Gi")
LARGE = Resources("250m", "512Mi", "2", "2Gi")

_SECCOMP = k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")


def restricted_security_context(read_only_root: bool = True) -> k8s.core.v1.SecurityContextArgs:
    """For our own images (Pod Security "restricted"): non-root uid 10001, nothing extra."""
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=APP_UID,
        run_as_group=APP_UID,
        read_only_root_filesystem=read_only_root,
        allow_privilege_escalation=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=_SECCOMP,
    )


def baseline_security_context(run_as_user: int | None = None) -> k8s.core.v1.SecurityContextArgs:
    """For third-party images whose entrypoints may still switch user at start (mongo, influxdb,
    telegraf): no privilege escalation, the runtime's seccomp profile, no raw sockets (none of them
    pings or crafts packets; the other capabilities stay for the user switch). With `run_as_user` the
    image starts as that non-root user and needs no capability at all."""
    drop = ["ALL"] if run_as_user is not None else ["NET_RAW"]
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        seccomp_profile=_SECCOMP,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=drop),
        run_as_user=run_as_user,
        run_as_non_root=True if run_as_user is not None else None,
    )


# --- policy exceptions ------------------------------------------------------------------------------

# Checks of the policy scan (checkov) that third-party images cannot pass as they are, with the reason.
# Shared by the components that run such images; each adds its own (see `policy_skip_annotations`).
THIRD_PARTY_IMAGE_SKIPS: dict[str, str] = {
    "CKV_K8S_43": "a third-party image by its maintained tag; the digest changes with every patch release",
    "CKV_K8S_15": "tag pinned to a release line; IfNotPresent keeps offline clusters working",
    "CKV_K8S_22": "the image writes outside its volumes at start; a read-only root is not supported by it",
}
# Images whose entrypoint starts as root and switches to the image's own low uid (gosu / su-exec).
ROOT_ENTRYPOINT_SKIPS: dict[str, str] = {
    "CKV_K8S_23": "the entrypoint starts as root to own its data folder, then drops to the image's user",
    "CKV_K8S_40": "the image's own user has a fixed low uid; files on existing volumes are owned by it",
    "CKV_K8S_37": "the entrypoint's switch to the image's user needs SETUID, SETGID and CHOWN",
}
# Images that run as their own fixed non-root uid (set as runAsUser).
FIXED_UID_SKIPS: dict[str, str] = {
    "CKV_K8S_40": "the image's own user has a fixed uid below 10000; its files and data are owned by it",
}
ENV_SECRET_SKIP = "the image reads this credential from its environment only (its documented interface)"  # noqa: S105
# A server reached through the ingress controller or by in-cluster clients of any namespace.
OPEN_SERVER_SKIP = "reached through the ingress controller, whose namespace differs between clusters"


def policy_skip_annotations(skips: Mapping[str, str]) -> dict[str, str]:
    """checkov reads `checkov.io/skip<n>: <check>=<reason>` from an object's annotations."""
    for check, reason in skips.items():
        if not reason or "=" in reason:
            raise ValueError(f"policy skip {check} needs a reason without '=', got {reason!r}")
    return {
        f"checkov.io/skip{i}": f"{check}={reason}"
        for i, (check, reason) in enumerate(sorted(skips.items()), 1)
    }


# --- volumes ----------------------------------------------------------------------------------------


def claim_or_empty_dir(volume: str, claim_name: pulumi.Input[str] | None) -> k8s.core.v1.VolumeArgs:
    """A PVC volume, or an emptyDir when no claim is given (ephemeral data: tests, throwaway stacks)."""
    if claim_name is None:
        return k8s.core.v1.VolumeArgs(name=volume, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())
    return k8s.core.v1.VolumeArgs(
        name=volume,
        persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim_name),
    )


# In-cluster Kubernetes clients read the service account's credentials from here.
KUBE_API_ACCESS_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBE_API_ACCESS_VOLUME = "kube-api-access"


def kube_api_access_volume() -> k8s.core.v1.VolumeArgs:
    """What automountServiceAccountToken would mount (a short-lived token the kubelet renews, the cluster's
    CA, the namespace), named on the pod spec instead: automount stays off everywhere and only the pods
    that call the Kubernetes API (operator, API) carry this volume."""
    return k8s.core.v1.VolumeArgs(
        name=KUBE_API_ACCESS_VOLUME,
        projected=k8s.core.v1.ProjectedVolumeSourceArgs(
            default_mode=0o444,
            sources=[
                k8s.core.v1.VolumeProjectionArgs(
                    service_account_token=k8s.core.v1.ServiceAccountTokenProjectionArgs(
                        path="token", expiration_seconds=3607
                    )
                ),
                k8s.core.v1.VolumeProjectionArgs(
                    config_map=k8s.core.v1.ConfigMapProjectionArgs(
                        name="kube-root-ca.crt",
                        items=[k8s.core.v1.KeyToPathArgs(key="ca.crt", path="ca.crt")],
                    )
                ),
                k8s.core.v1.VolumeProjectionArgs(
                    downward_api=k8s.core.v1.DownwardAPIProjectionArgs(
                        items=[
                            k8s.core.v1.DownwardAPIVolumeFileArgs(
                                path="namespace",
                                field_ref=k8s.core.v1.ObjectFieldSelectorArgs(
                                    field_path="metadata.namespace"
                                ),
                            )
                        ]
                    )
                ),
            ],
        ),
    )


def kube_api_access_mount() -> k8s.core.v1.VolumeMountArgs:
    return mount(KUBE_API_ACCESS_VOLUME, KUBE_API_ACCESS_PATH, read_only=True)


def secret_volume(volume: str, secret_name: pulumi.Input[str]) -> k8s.core.v1.VolumeArgs:
    """A Secret as files, one per key, readable by the pod's fsGroup only: credentials our own services read
    from files (`*_FILE` settings) rather than from their environment."""
    return k8s.core.v1.VolumeArgs(
        name=volume,
        secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=secret_name, default_mode=0o440),
    )


def config_map_volume(
    volume: str, config_map_name: pulumi.Input[str], mode: int | None = None
) -> k8s.core.v1.VolumeArgs:
    """A ConfigMap as files (`mode`: their permissions, e.g. 0o555 for scripts)."""
    return k8s.core.v1.VolumeArgs(
        name=volume,
        config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map_name, default_mode=mode),
    )


def empty_dir(volume: str) -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(name=volume, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())


def mount(
    volume: str, path: str, sub_path: str | None = None, read_only: bool | None = None
) -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=volume, mount_path=path, sub_path=sub_path, read_only=read_only)


def data_owner_init_container(image: str, uid: int, volume: str, path: str) -> k8s.core.v1.ContainerArgs:
    """A root init container that hands a volume's folder to `uid`: hostPath volumes ignore fsGroup, so a
    non-root server could not write to a folder the kubelet created as root. Only CHOWN is kept."""
    return k8s.core.v1.ContainerArgs(
        name="data-owner",
        image=image,
        command=["chown", f"{uid}:{uid}", path],
        volume_mounts=[mount(volume, path)],
        resources=Resources("10m", "16Mi", "100m", "32Mi").args(),
        security_context=k8s.core.v1.SecurityContextArgs(
            run_as_user=0,
            run_as_non_root=False,
            read_only_root_filesystem=True,
            allow_privilege_escalation=False,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"], add=["CHOWN"]),
            seccomp_profile=_SECCOMP,
        ),
    )


# --- workloads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Toleration:
    key: str
    value: str
    effect: str = "NoSchedule"

    def args(self) -> k8s.core.v1.TolerationArgs:
        return k8s.core.v1.TolerationArgs(
            key=self.key, operator="Equal", value=self.value, effect=self.effect
        )


_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Placement:
    """Which nodes a piece's pods may run on: node labels they select and taints they tolerate. The default
    (nothing) leaves it to the scheduler, as every real cluster does; the local environment pins pieces to
    its real node or to kwok's simulated ones."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    def __post_init__(self) -> None:
        for key, value in self.node_selector.items():
            if (
                len(key) > 316
                or not _LABEL_KEY.match(key)
                or len(value) > 63
                or not _LABEL_VALUE.match(value)
            ):
                raise ValueError(f"Placement: {key}={value} is not a node label selector (key=value)")

    @classmethod
    def from_selector(cls, selector: str) -> Placement:
        """`key=value` (e.g. dtpoc.io/node=real); an empty string is "anywhere"."""
        if not selector:
            return cls()
        key, sep, value = selector.partition("=")
        if not sep:
            raise ValueError(f"a node selector is key=value, e.g. dtpoc.io/node=real; got {selector!r}")
        return cls({key: value})

    def node_selector_arg(self) -> dict[str, str] | None:
        return dict(self.node_selector) or None

    def tolerations_arg(self) -> list[k8s.core.v1.TolerationArgs] | None:
        return [t.args() for t in self.tolerations] or None


ANYWHERE = Placement()
# kwok's simulated nodes (kwokctl's node template): label `type: kwok`, annotation kwok.x-k8s.io/node=fake.
# The template sets no taint; kwok's documented fake nodes carry kwok.x-k8s.io/node=fake:NoSchedule, so the
# toleration keeps a piece placeable on either kind.
KWOK_NODE = Placement({"type": "kwok"}, (Toleration("kwok.x-k8s.io/node", "fake"),))


@dataclass(frozen=True)
class IngressSettings:
    """How the platform exposes HTTP paths. `skip_await` is for stacks without an ingress controller:
    nobody ever fills the Ingress's status.loadBalancer there, so Pulumi's await would time out.
    `wait_for`: resources every Ingress waits for (the controller installed by the same program, whose
    admission webhook checks each Ingress). `tls_secret`: a `kubernetes.io/tls` Secret for `host`; with it
    every Ingress serves HTTPS and redirects HTTP there."""

    class_name: str = "nginx"
    host: str | None = None
    skip_await: bool = False
    wait_for: tuple[pulumi.Resource, ...] = ()
    tls_secret: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        if not self.class_name:
            raise ValueError("IngressSettings.class_name must not be empty")
        if self.tls_secret is not None and not self.host:
            raise ValueError("IngressSettings.tls_secret needs a host (a certificate names its host)")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_secret is not None else "http"


@dataclass
class Workload:
    """What `deployment_with_service` builds: a single-container Deployment, its Service and optionally an
    Ingress path. The Service selects the pods by `app`'s selector labels."""

    app: str
    component: str
    namespace: str
    container: k8s.core.v1.ContainerArgs
    volumes: Sequence[k8s.core.v1.VolumeArgs] = field(default_factory=list)
    service_name: str | None = None
    service_ports: Sequence[k8s.core.v1.ServicePortArgs] = field(default_factory=list)
    replicas: int = 1
    # Recreate for single-writer data (a ReadWriteOnce claim, a database lock file).
    recreate: bool = False
    service_account_name: pulumi.Input[str] | None = None
    automount_service_account_token: bool = False
    fs_group: int | None = None
    init_containers: Sequence[k8s.core.v1.ContainerArgs] = field(default_factory=list)
    pod_annotations: Mapping[str, pulumi.Input[str]] | None = None
    # Policy-scan checks this workload's image cannot pass: check id -> reason (see THIRD_PARTY_IMAGE_SKIPS).
    policy_skips: Mapping[str, str] = field(default_factory=dict)
    placement: Placement = ANYWHERE


def deployment(resource_name: str, w: Workload, opts: pulumi.ResourceOptions) -> k8s.apps.v1.Deployment:
    return k8s.apps.v1.Deployment(
        resource_name,
        metadata=meta(w.app, w.namespace, w.component, annotations=policy_skip_annotations(w.policy_skips)),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=w.replicas,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(w.app)),
            strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate") if w.recreate else None,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    labels=labels(w.app, w.component),
                    annotations=dict(w.pod_annotations) if w.pod_annotations else None,
                ),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=w.service_account_name,
                    automount_service_account_token=w.automount_service_account_token,
                    security_context=k8s.core.v1.PodSecurityContextArgs(
                        seccomp_profile=_SECCOMP, fs_group=w.fs_group
                    ),
                    init_containers=list(w.init_containers) or None,
                    containers=[w.container],
                    volumes=list(w.volumes) or None,
                    node_selector=w.placement.node_selector_arg(),
                    tolerations=w.placement.tolerations_arg(),
                ),
            ),
        ),
        opts=opts,
    )


def service(resource_name: str, w: Workload, opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
    name = w.service_name or w.app
    return k8s.core.v1.Service(
        resource_name,
        metadata=meta(name, w.namespace, w.component, app=w.app),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="ClusterIP", selector=selector_labels(w.app), ports=list(w.service_ports)
        ),
        opts=opts,
    )


def service_port(port: int, target_port: int, name: str = "http") -> k8s.core.v1.ServicePortArgs:
    return k8s.core.v1.ServicePortArgs(name=name, port=port, target_port=target_port, protocol="TCP")


def ingress(
    resource_name: str,
    *,
    name: str,
    app: str,
    component: str,
    namespace: str,
    path: str,
    service_name: pulumi.Input[str],
    service_port_number: int,
    settings: IngressSettings,
    annotations: Mapping[str, str] | None = None,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.Ingress:
    all_annotations = dict(annotations or {})
    tls = None
    if settings.tls_secret is not None:
        tls = [k8s.networking.v1.IngressTLSArgs(hosts=[settings.host], secret_name=settings.tls_secret)]
        # ingress-nginx redirects to HTTPS once an Ingress has `tls`; forced, so it holds behind a proxy too.
        all_annotations["nginx.ingress.kubernetes.io/ssl-redirect"] = "true"
        all_annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] = "true"
    if settings.skip_await:
        # No ingress controller in this stack: status.loadBalancer is never set, so don't wait for it.
        all_annotations["pulumi.com/skipAwait"] = "true"
    if settings.wait_for:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(settings.wait_for)))
    return k8s.networking.v1.Ingress(
        resource_name,
        metadata=meta(name, namespace, component, app=app, annotations=all_annotations),
        spec=k8s.networking.v1.IngressSpecArgs(
            ingress_class_name=settings.class_name,
            tls=tls,
            rules=[
                k8s.networking.v1.IngressRuleArgs(
                    host=settings.host or None,
                    http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                        paths=[
                            k8s.networking.v1.HTTPIngressPathArgs(
                                path=path,
                                path_type="Prefix",
                                backend=k8s.networking.v1.IngressBackendArgs(
                                    service=k8s.networking.v1.IngressServiceBackendArgs(
                                        name=service_name,
                                        port=k8s.networking.v1.ServiceBackendPortArgs(
                                            number=service_port_number
                                        ),
                                    )
                                ),
                            )
                        ]
                    ),
                )
            ],
        ),
        opts=opts,
    )


def check_path(path: str, what: str) -> str:
    if not path.startswith("/") or " " in path:
        raise ValueError(f"{what} must be an absolute URL path starting with '/', got {path!r}")
    return path


def check_port(port: int, what: str) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError(f"{what} must be a port number 1..65535, got {port!r}")
    return port


def kebab(name: str) -> str:
    """`MyUiModule` -> `my-ui-module` (default names of subclasses)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
