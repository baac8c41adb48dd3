"""The images the program builds (a table, one line per image), or prebuilt references from config.

Each image is a DockerImage (docker_image.py: a dynamic provider around the Docker CLI), tagged by a hash
of its build context, pushed to a registry, imported into a node's containerd or left in the Docker
engine. The Dockerfiles take their base image as the `BASE` build argument: unset, they use their public
default (python:3.11-slim); the local stack names bases made from Debian packages instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pulumi

from .common import child_options
from .docker_image import REGISTRY, DockerImage, DockerImageArgs

# The repository root: the build contexts below are relative to it (the program may run from a folder
# of symlinks to it, so resolve them).
REPO_ROOT = Path(__file__).resolve().parent.parent
# Prebuilt images carry the project's version (pyproject.toml); a mutable tag such as `latest` is refused:
# what runs must be what was reviewed, and a restart must not pull something else.
VERSION = "0.1.0"
DEFAULT_OPERATOR_IMAGE = f"ghcr.io/cam-digital-hospitals/dtpoc-operator:{VERSION}"
DEFAULT_API_IMAGE = f"ghcr.io/cam-digital-hospitals/dtpoc-api:{VERSION}"
_REF = re.compile(r"^[a-z0-9]+([._\-/:@][A-Za-z0-9_.\-]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
LABELS = {"org.opencontainers.image.source": "dtpoc", "app.kubernetes.io/part-of": "dtpoc"}


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


class BaseImage(StrEnum):
    """Which configured base an image's Dockerfile gets as its `BASE` build argument."""

    PYTHON = "python"  # Debian with Python 3.11 (public default python:3.11-slim)
    NODE = "node"  # Debian with Node.js and npm


@dataclass(frozen=True)
class ImageSpec:
    """One buildable image: its name (the last part of its repository), its Dockerfile and context
    (relative to the repository root), its base and any fixed build arguments."""

    name: str
    dockerfile: str
    context: str = "."
    base: BaseImage | None = BaseImage.PYTHON
    build_args: Mapping[str, str] = field(default_factory=dict)


# Every image the program can build, by the key that config `builtImages` and `ServiceImages.refs` use.
IMAGES: dict[str, ImageSpec] = {
    "operator": ImageSpec("dtpoc-operator", "services/operator/Dockerfile"),
    "api": ImageSpec("dtpoc-api", "services/api/Dockerfile"),
    # Stand-ins for third-party images where no registry can be reached (the local stack), images/README.md.
    # FerretDB's context is the folder of its binary (config imageContexts.ferretdb; tools/build.sh makes it).
    "ferretdb": ImageSpec("dtpoc-ferretdb", "images/ferretdb/Dockerfile", context=""),
    "mosquitto": ImageSpec("dtpoc-mosquitto", "images/mosquitto/Dockerfile", "images/mosquitto"),
    # Telegraf's and InfluxDB's contexts are the folders of their binaries (imageContexts, tools/build.sh).
    "telegraf": ImageSpec("dtpoc-telegraf", "images/telegraf/Dockerfile", context=""),
    "influxdb": ImageSpec("dtpoc-influxdb", "images/influxdb/Dockerfile", context=""),
    "node-red": ImageSpec("dtpoc-node-red", "images/node-red/Dockerfile", "images/node-red"),
    "mongo-express": ImageSpec(
        "dtpoc-mongo-express", "images/mongo-express/Dockerfile", "images/mongo-express"
    ),
    "sensor-simulator": ImageSpec(
        "dtpoc-sensor-simulator", "simulators/sensors/Dockerfile", "simulators/sensors"
    ),
    # Analytics modules: the README's sample and the probe the platform's own tests launch.
    "hospital-lab": ImageSpec(
        "dtpoc-hospital-lab", "modules/hospital_lab/Dockerfile", "modules/hospital_lab"
    ),
    "probe": ImageSpec("dtpoc-probe", "tests/modules/probe/Dockerfile", "tests/modules/probe"),
}


@dataclass(frozen=True)
class ImageBuildSettings:
    """How and where images are built. `registry` prefixes the repositories (`<registry>/<name>`);
    destination: `push` to it, or `containerd_address` (import into that containerd, namespace k8s.io), or
    neither (left in the Docker engine at `docker_host`, e.g. Docker Desktop's). `extra_tag`: a tag given
    besides the content hash (e.g. a release number). `python_base` / `node_base`: the `BASE` build
    argument of the images on that base ("" keeps the Dockerfile's public default)."""

    registry: str = ""
    extra_tag: str = ""
    push: bool = False
    registry_username: str | None = None
    registry_password: pulumi.Input[str] | None = None
    docker_host: str = ""
    docker_cli: str = "docker"
    network: str = ""
    containerd_address: str = ""
    python_base: str = ""
    node_base: str = ""
    contexts: Mapping[str, str] = field(default_factory=dict)  # image key -> build context outside the repo
    repo_root: Path = REPO_ROOT

    def __post_init__(self) -> None:
        if self.registry and not REGISTRY.match(self.registry):
            raise ValueError(
                f"ImageBuildSettings.registry must be like ghcr.io/my-org, got {self.registry!r}"
            )
        if self.extra_tag and not _TAG.match(self.extra_tag):
            raise ValueError(f"ImageBuildSettings.extra_tag is not a valid image tag: {self.extra_tag!r}")
        if self.extra_tag == "latest":
            raise ValueError("ImageBuildSettings.extra_tag must be a version tag, not latest (latest moves)")
        if self.push and not self.registry:
            raise ValueError(
                "ImageBuildSettings: push needs a registry (config `imageRegistry`, e.g. ghcr.io/my-org)"
            )
        if self.push and self.containerd_address:
            raise ValueError("ImageBuildSettings: push to a registry or load into containerd, not both")
        if (self.registry_username is None) != (self.registry_password is None):
            raise ValueError(
                "ImageBuildSettings: give both registry_username and registry_password, or neither"
            )
        for what, ref in (("python_base", self.python_base), ("node_base", self.node_base)):
            if ref:
                check_image_ref(ref, f"ImageBuildSettings.{what}")

    def repository(self, spec: ImageSpec) -> str:
        return f"{self.registry.rstrip('/')}/{spec.name}" if self.registry else spec.name

    def base_for(self, spec: ImageSpec) -> str:
        return {BaseImage.PYTHON: self.python_base, BaseImage.NODE: self.node_base}.get(spec.base, "")  # type: ignore[arg-type]

    def image_args(self, key: str) -> DockerImageArgs:
        spec = IMAGES[key]
        build_args = dict(spec.build_args)
        if base := self.base_for(spec):
            build_args["BASE"] = base
        if not spec.context and key not in self.contexts:
            raise ValueError(
                f"image {key!r} builds from a folder outside the repository: set imageContexts.{key}"
            )
        context = Path(self.contexts[key]) if key in self.contexts else self.repo_root / spec.context
        push_login = self.push and self.registry_username is not None
        return DockerImageArgs(
            context=context,
            dockerfile=self.repo_root / spec.dockerfile,
            repository=self.repository(spec),
            build_args=build_args,
            labels=LABELS,
            extra_tags=(self.extra_tag,) if self.extra_tag else (),
            push=self.push,
            registry_username=(self.registry_username or "") if push_login else "",
            registry_password=self.registry_password if push_login else None,
            docker_host=self.docker_host,
            docker_cli=self.docker_cli,
            network=self.network,
            containerd_address=self.containerd_address,
        )


@dataclass(frozen=True)
class ServiceImagesArgs:
    """`build` False: use `operator_image` / `api_image` as they are and build nothing. `build` True: build
    the images of `IMAGES` named in `built` with `settings`."""

    build: bool = False
    built: tuple[str, ...] = ("operator", "api")
    operator_image: str = DEFAULT_OPERATOR_IMAGE
    api_image: str = DEFAULT_API_IMAGE
    settings: ImageBuildSettings = field(default_factory=ImageBuildSettings)

    def __post_init__(self) -> None:
        check_image_ref(self.operator_image, "ServiceImagesArgs.operator_image")
        check_image_ref(self.api_image, "ServiceImagesArgs.api_image")
        unknown = [key for key in self.built if key not in IMAGES]
        if unknown:
            raise ValueError(
                f"ServiceImagesArgs.built: unknown images {unknown}; the program builds {sorted(IMAGES)}"
            )
        if len(set(self.built)) != len(self.built):
            raise ValueError(f"ServiceImagesArgs.built names an image twice: {list(self.built)}")


class ServiceImages(pulumi.ComponentResource):
    """Outputs: `refs` (what workloads use, per built image key), `operator_ref` and `api_ref` (built, or
    the configured references)."""

    refs: dict[str, pulumi.Output[str]]
    images: dict[str, DockerImage]
    operator_ref: pulumi.Output[str]
    api_ref: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceImagesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dtpoc:images:ServiceImages", name, None, opts)
        self.images = {}
        if args.build:
            child = child_options(self, opts)
            # One build at a time: Docker 20.10's BuildKit shares a context upload between concurrent
            # builds of the same folder whatever their <Dockerfile>.dockerignore (seen here: the
            # operator image got the API's files), and a 2-core machine gains nothing from overlap.
            previous: list[pulumi.Resource] = []
            for key in args.built:
                self.images[key] = DockerImage(
                    f"{name}-{key}",
                    args.settings.image_args(key),
                    opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=previous)),
                )
                previous = [self.images[key]]
        self.refs = {key: image.ref for key, image in self.images.items()}
        self.operator_ref = self.ref("operator", args.operator_image)
        self.api_ref = self.ref("api", args.api_image)
        self.register_outputs({"refs": self.refs, "operator_ref": self.operator_ref, "api_ref": self.api_ref})

    def ref(self, key: str, default: str) -> pulumi.Output[str]:
        """The built image's reference, or `default` when the program does not build that image."""
        return self.refs[key] if key in self.refs else pulumi.Output.from_input(default)
