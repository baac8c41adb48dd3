"""An image built by the program itself: a Pulumi dynamic resource around the Docker CLI.

Why not pulumi-docker-build: its provider is a plugin binary that must be downloaded (our machines cannot
install it), while a dynamic provider runs inside the Python program, here and for users alike. What it
needs is a Docker engine with BuildKit (`docker build` with DOCKER_BUILDKIT=1: Docker 20.10+, or buildx's
default builder) and, for a node without a registry, containerd's `ctr`.

The tag is `<repository>:<content hash>`, the hash covering the context files the Dockerfile's ignore
file lets through, the Dockerfile, the build arguments (the base image among them) and labels
(build_context.py). An unchanged hash is no change on the next `pulumi up`; a changed one rebuilds that
image only. The built image is pushed to its registry (`push`), imported into a containerd (`containerd
address`, namespace k8s.io: what a kubelet on that containerd runs with `imagePullPolicy: IfNotPresent`),
or left in the Docker engine (Docker Desktop's Kubernetes uses it directly).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic

from .build_context import BuildContext

HASH_LENGTH = 20
BUILD_TIMEOUT = 3600
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?"
# [host[:port]/]path, no tag: the repository part of a Docker reference.
_REPOSITORY = re.compile(rf"^(?:{_HOST}/)?{_PATH_PART}(?:/{_PATH_PART})*$")
# host[:port][/path]: where images are pushed, e.g. ghcr.io/my-org.
REGISTRY = re.compile(rf"^{_HOST}(?:/{_PATH_PART})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ImageBuildError(RuntimeError):
    pass


def registry_of(repository: str) -> str:
    """The registry host of a repository, as Docker reads it (docker.io when the first part is no host)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def normalized(ref: str) -> str:
    """A reference as containerd (and the kubelet) names it: docker.io/library/ for short names."""
    if registry_of(ref) != "docker.io" or ref.startswith("docker.io/"):
        return ref
    return f"docker.io/{ref}" if "/" in ref.split(":")[0] else f"docker.io/library/{ref}"


@dataclass(frozen=True)
class BuildSpec:
    """Everything one build needs, as plain values: what the program passes and the provider receives
    (property names are the camelCase keys of the resource)."""

    context: str
    dockerfile: str
    repository: str
    tag: str
    buildArgs: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    extraTags: list[str] = field(default_factory=list)
    push: bool = False
    registryUsername: str = ""
    dockerHost: str = ""
    dockerCli: str = "docker"
    network: str = ""
    containerdAddress: str = ""
    containerdNamespace: str = "k8s.io"
    ctrCli: str = "ctr"

    # Properties whose change means a new image or a new destination (the rest only says how to build).
    IDENTITY = ("tag", "extraTags", "push", "containerdAddress", "containerdNamespace")

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> BuildSpec:
        known = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in props.items() if k in known and v is not None})

    def props(self) -> dict[str, Any]:
        return asdict(self)

    # --- running the tools ----------------------------------------------------------------------------

    def docker_env(self, docker_config: str | None = None) -> dict[str, str]:
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        if self.dockerHost:
            env["DOCKER_HOST"] = self.dockerHost
        if docker_config:
            env["DOCKER_CONFIG"] = docker_config
        return env

    def _run(
        self, command: Sequence[str], env: Mapping[str, str] | None = None, input: bytes | None = None
    ) -> str:
        result = subprocess.run(
            list(command),
            env=dict(env or self.docker_env()),
            input=input,
            capture_output=True,
            timeout=BUILD_TIMEOUT,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise ImageBuildError(
                f"{' '.join(command[:3])} … failed ({result.returncode}):\n{output[-6000:]}"
            )
        return result.stdout.decode(errors="replace")

    def build_command(self) -> list[str]:
        command = [self.dockerCli, "build", "--progress=plain", "--file", self.dockerfile, "--tag", self.tag]
        for extra in self.extraTags:
            command += ["--tag", f"{self.repository}:{extra}"]
        for key, value in sorted(self.buildArgs.items()):
            command += ["--build-arg", f"{key}={value}"]
        for key, value in sorted(self.labels.items()):
            command += ["--label", f"{key}={value}"]
        if self.target:
            command += ["--target", self.target]
        if self.network:
            command += ["--network", self.network]
        return [*command, self.context]

    def build(self) -> None:
        self._run(self.build_command())

    def push_image(self, password: str | None) -> str:
        """Push every tag; returns `<tag>@<digest>` (a new digest rolls the workloads that use it)."""
        with tempfile.TemporaryDirectory(prefix="dtpoc-docker-config-") as config:
            # Credentials given to the program go to a config of this push only, never the user's.
            env = self.docker_env(config if self.registryUsername else None)
            if self.registryUsername:
                self._run(
                    [self.dockerCli, "login", "--username", self.registryUsername, "--password-stdin",
                     registry_of(self.repository)],
                    env,
                    input=(password or "").encode(),
                )  # fmt: skip
            for tag in (self.tag, *(f"{self.repository}:{t}" for t in self.extraTags)):
                self._run([self.dockerCli, "push", tag], env)
        digests = json.loads(
            self._run([self.dockerCli, "image", "inspect", "--format={{json .RepoDigests}}", self.tag])
        )
        for entry in digests or []:
            repo, _, digest = entry.partition("@")
            if normalized(repo) == normalized(self.repository):
                return f"{self.tag}@{digest}"
        raise ImageBuildError(f"pushed {self.tag} but Docker reports no digest for it: {digests}")

    def ctr_command(self) -> list[str]:
        return [self.ctrCli, "--address", self.containerdAddress, "--namespace", self.containerdNamespace]

    def load_into_containerd(self) -> None:
        """`docker save <tag> | ctr -n <ns> images import -`."""
        save = subprocess.Popen(
            [self.dockerCli, "save", self.tag, *(f"{self.repository}:{t}" for t in self.extraTags)],
            env=self.docker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert save.stdout is not None
        try:
            result = subprocess.run(
                [*self.ctr_command(), "images", "import", "-"],
                stdin=save.stdout,
                capture_output=True,
                timeout=BUILD_TIMEOUT,
            )
        finally:
            save.stdout.close()
            save_err = save.stderr.read() if save.stderr else b""
            save.wait()
        if save.returncode != 0 or result.returncode != 0:
            output = (save_err + result.stdout + result.stderr).decode(errors="replace")
            raise ImageBuildError(
                f"docker save {self.tag} | ctr images import failed "
                f"({save.returncode}, {result.returncode}):\n{output}"
            )

    def present(self) -> bool:
        """The image is where it was put (a node's containerd or the Docker engine may have been reset);
        a pushed one is taken to be in its registry."""
        if self.push:
            return True
        try:
            if self.containerdAddress:
                names = self._run([*self.ctr_command(), "images", "ls", "--quiet"], env=os.environ)
                return normalized(self.tag) in names.split()
            self._run([self.dockerCli, "image", "inspect", "--format={{.Id}}", self.tag])
            return True
        except (ImageBuildError, OSError, subprocess.TimeoutExpired):
            return False

    def run(self, password: str | None = None) -> str:
        """Build, then push or load; returns the reference workloads should use."""
        self.build()
        if self.push:
            return self.push_image(password)
        if self.containerdAddress:
            self.load_into_containerd()
        return self.tag


class DockerImageProvider(pulumi.dynamic.ResourceProvider):
    """The CRUD of DockerImage. Runs in the dynamic provider's process; keeps its inputs in its outputs,
    since `diff` receives the last outputs as `olds`."""

    # Nothing secret is captured in the provider itself (the password travels as a secret property).
    serialize_as_secret_always = False

    def _apply(self, props: Mapping[str, Any]) -> dict[str, Any]:
        spec = BuildSpec.from_props(props)
        ref = spec.run(props.get("registryPassword"))
        outs = {k: v for k, v in props.items() if k != "registryPassword"}
        return {**outs, "ref": ref}

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_=props["repository"], outs=self._apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = [key for key in BuildSpec.IDENTITY if olds.get(key) != news.get(key)]
        if not changed and not BuildSpec.from_props(news).present():
            changed = ["ref"]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: a content-addressed tag may be shared (another stack, the node's running pods), and
        pushed images stay in their registry, as with `docker push`."""


@dataclass(frozen=True)
class DockerImageArgs:
    """`context` and `dockerfile` (absolute, or relative to `context`); `repository` without a tag, e.g.
    localhost/dtpoc-api or ghcr.io/org/dtpoc-api. Destination: `push` to the repository's registry
    (optionally logging in with `registry_username` / `registry_password`), or `containerd_address`
    (import into that containerd), or neither (the image stays in the Docker engine)."""

    context: Path
    dockerfile: Path
    repository: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    extra_tags: tuple[str, ...] = ()
    push: bool = False
    registry_username: str = ""
    registry_password: pulumi.Input[str] | None = None
    docker_host: str = ""
    docker_cli: str = "docker"
    network: str = ""
    containerd_address: str = ""
    containerd_namespace: str = "k8s.io"
    ctr_cli: str = "ctr"

    def __post_init__(self) -> None:
        _ = self.build_context  # validates both paths (ValueError when missing)
        if not _REPOSITORY.match(self.repository):
            raise ValueError(
                f"DockerImageArgs.repository must be an image name without a tag, such as "
                f"ghcr.io/org/name, got {self.repository!r}"
            )
        for tag in self.extra_tags:
            if not _TAG.match(tag):
                raise ValueError(f"DockerImageArgs.extra_tags: {tag!r} is not a valid image tag")
        for key in self.build_args:
            if not _BUILD_ARG.match(key):
                raise ValueError(f"DockerImageArgs.build_args: {key!r} is not a build argument name")
        if self.push and self.containerd_address:
            raise ValueError("DockerImageArgs: push to a registry or load into containerd, not both")
        if (self.registry_password is None) != (not self.registry_username):
            raise ValueError("DockerImageArgs: give both registry_username and registry_password, or neither")
        if self.registry_username and not self.push:
            raise ValueError("DockerImageArgs: registry credentials are only used with push")

    @cached_property
    def build_context(self) -> BuildContext:
        return BuildContext(Path(self.context), Path(self.dockerfile))

    def content_hash(self) -> str:
        extra = {"target": self.target, **{f"label:{k}": v for k, v in self.labels.items()}}
        return self.build_context.digest(self.build_args, extra)[:HASH_LENGTH]

    def spec(self) -> BuildSpec:
        context = self.build_context
        return BuildSpec(
            context=str(context.root),
            dockerfile=str(context.dockerfile),
            repository=self.repository,
            tag=f"{self.repository}:{self.content_hash()}",
            buildArgs=dict(self.build_args),
            labels=dict(self.labels),
            target=self.target,
            extraTags=list(self.extra_tags),
            push=self.push,
            registryUsername=self.registry_username,
            dockerHost=self.docker_host,
            dockerCli=self.docker_cli,
            network=self.network,
            containerdAddress=self.containerd_address,
            containerdNamespace=self.containerd_namespace,
            ctrCli=self.ctr_cli,
        )


class DockerImage(pulumi.dynamic.Resource, module="dtpoc", name="DockerImage"):
    """Outputs: `tag` (`<repository>:<content hash>`, known at preview) and `ref` (what workloads use:
    the tag, or `<tag>@<digest>` when pushed)."""

    tag: pulumi.Output[str]
    ref: pulumi.Output[str]

    def __init__(self, name: str, args: DockerImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {**args.spec().props(), "ref": None}
        if args.registry_password is not None:
            props["registryPassword"] = pulumi.Output.secret(args.registry_password)
        secret = pulumi.ResourceOptions(additional_secret_outputs=["registryPassword"])
        super().__init__(DockerImageProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret))
