"""The operator and API images: built from services/operator and services/api by the program itself
(pulumi-docker-build; build context is the repository root), or prebuilt references from config."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_docker_build as docker_build

from .common import child_options

# Our images carry the project's version (pyproject.toml); a mutable tag such as `latest` is refused: what
# runs must be what was reviewed, and a restart must not pull something else.
VERSION = "0.1.0"
DEFAULT_OPERATOR_IMAGE = f"ghcr.io/cam-digital-hospitals/dtpoc-operator:{VERSION}"
DEFAULT_API_IMAGE = f"ghcr.io/cam-digital-hospitals/dtpoc-api:{VERSION}"
# (image name, Dockerfile) per service, relative to the build context.
SERVICES = {
    "operator": ("dtpoc-operator", "services/operator/Dockerfile"),
    "api": ("dtpoc-api", "services/api/Dockerfile"),
}
_REF = re.compile(r"^[a-z0-9]+([._\-/:@][A-Za-z0-9_.\-]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def check_image_ref(ref: str, what: str) -> str:
    """A reference pinned to a version tag or a digest (`latest`, or no tag at all, is refused)."""
    if not ref or not _REF.match(ref):
        raise ValueError(f"{what} must be an image reference such as ghcr.io/org/name:tag, got {ref!r}")
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if not digest and (not tag or tag == "latest"):
        raise ValueError(
            f"{what} must name a version tag or a digest, not {tag or 'no tag'!r} (latest moves): got {ref!r}"
        )
    return ref


@dataclass(frozen=True)
class ServiceImagesArgs:
    """`build` False: use `operator_image` / `api_image` as they are. `build` True: build both images,
    tag them `<registry>/<name>:<tag>` and push them (`push`, with optional credentials) or load them into
    the local Docker engine (e.g. Docker Desktop's Kubernetes)."""

    build: bool = False
    operator_image: str = DEFAULT_OPERATOR_IMAGE
    api_image: str = DEFAULT_API_IMAGE
    registry: str = ""
    tag: str = VERSION
    push: bool = False
    registry_username: str | None = None
    registry_password: pulumi.Input[str] | None = None
    context: str = "."

    def __post_init__(self) -> None:
        check_image_ref(self.operator_image, "ServiceImagesArgs.operator_image")
        check_image_ref(self.api_image, "ServiceImagesArgs.api_image")
        if not _TAG.match(self.tag) or self.tag == "latest":
            raise ValueError(f"ServiceImagesArgs.tag must be a version tag (not latest): {self.tag!r}")
        if self.build and self.push and not self.registry:
            raise ValueError(
                "ServiceImagesArgs: push needs a registry (config `imageRegistry`, e.g. ghcr.io/my-org)"
            )
        if (self.registry_username is None) != (self.registry_password is None):
            raise ValueError(
                "ServiceImagesArgs: give both registry_username and registry_password, or neither"
            )

    def tag_for(self, image_name: str) -> str:
        prefix = f"{self.registry.rstrip('/')}/" if self.registry else ""
        return f"{prefix}{image_name}:{self.tag}"


class ServiceImages(pulumi.ComponentResource):
    """Outputs: `operator_ref`, `api_ref` (with a digest when pushed: a new build rolls the Deployments)."""

    operator_ref: pulumi.Output[str]
    api_ref: pulumi.Output[str]
    images: dict[str, docker_build.Image]

    def __init__(
        self, name: str, args: ServiceImagesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dtpoc:images:ServiceImages", name, None, opts)
        self.images = {}
        if args.build:
            child = child_options(self, opts)
            registries = None
            if args.registry and args.registry_username is not None:
                registries = [
                    docker_build.RegistryArgs(
                        address=args.registry.split("/")[0],
                        username=args.registry_username,
                        password=args.registry_password,
                    )
                ]
            for service, (image_name, dockerfile) in SERVICES.items():
                self.images[service] = docker_build.Image(
                    f"{name}-{service}",
                    context=docker_build.BuildContextArgs(location=args.context),
                    dockerfile=docker_build.DockerfileArgs(location=dockerfile),
                    tags=[args.tag_for(image_name)],
                    push=args.push,
                    load=not args.push,
                    registries=registries,
                    labels={"org.opencontainers.image.source": "dtpoc", "app.kubernetes.io/part-of": "dtpoc"},
                    opts=child,
                )
            self.operator_ref = self.images["operator"].ref
            self.api_ref = self.images["api"].ref
        else:
            self.operator_ref = pulumi.Output.from_input(args.operator_image)
            self.api_ref = pulumi.Output.from_input(args.api_image)
        self.register_outputs({"operator_ref": self.operator_ref, "api_ref": self.api_ref})
