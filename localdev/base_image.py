"""Base images made from Debian packages, since no registry image can be pulled here.

`mmdebstrap` writes a Debian bookworm root (with Python 3.11, the Python of `python:3.11-slim`, or with
Node.js and npm) as a tarball, cached once per machine under a hash of its inputs; `docker import` turns it
into an image of a given Docker engine. The Dockerfiles take such an image as their `BASE` build argument,
so the public build keeps its public base.

The package registries are reached here through a TLS-intercepting proxy whose CA is in the machine's CA
bundle: the bundle is copied into the image and named by the variables pip, uv, requests and Node read,
so `pip install` / `uv sync` / `npm install` inside a build work without touching the Dockerfiles.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from .docker import DOCKER_CLI, Dockerd

# Bump when the recipe below changes in a way its fields do not show.
RECIPE_VERSION = 1
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Where the machine's bundle goes in the image: outside /etc/ssl/certs, so a later update-ca-certificates
# (e.g. an `apt-get install` in a Dockerfile) cannot drop the proxy's CA from it.
IMAGE_CA_BUNDLE = "/usr/local/share/dtpoc/ca-bundle.crt"
DEBIAN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# Like Debian's slim images: no manuals, docs (but their copyright files) or translations.
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
)
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def images_cache() -> Path:
    return Path(os.environ.get("DTPOC_IMAGES_CACHE", Path.home() / ".cache" / "dtpoc" / "images"))


@dataclass(frozen=True)
class BaseImageRecipe:
    """One base image: a Debian suite with these packages, imported as `localhost/<name>:<flavour>-<key>`."""

    name: str
    flavour: str
    packages: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cmd: tuple[str, ...]
    suite: str = "bookworm"
    sources: tuple[str, ...] = DEBIAN_SOURCES

    def key(self, ca_bundle: bytes) -> str:
        """A hash of everything the tarball is made from (the recipe, the CA bundle copied into it)."""
        recipe = json.dumps(
            {"recipe": asdict(self), "version": RECIPE_VERSION, "slim": SLIM_DPKG_OPTIONS}, sort_keys=True
        )
        digest = hashlib.sha256(recipe.encode())
        digest.update(hashlib.sha256(ca_bundle).digest())
        return digest.hexdigest()[:12]

    def ref(self, key: str) -> str:
        return f"localhost/{self.name}:{self.flavour}-{key}"

    def changes(self) -> list[str]:
        """Dockerfile instructions for `docker import --change` (a tarball carries no image config)."""
        env = {"PATH": _PATH, "LANG": "C.UTF-8", **dict(self.env)}
        return [*(f"ENV {k}={v}" for k, v in env.items()), f"CMD {json.dumps(list(self.cmd))}"]


# The CA variables: pip (PIP_CERT), requests, uv and OpenSSL (SSL_CERT_FILE), Node and npm.
_CA_ENV = (
    ("SSL_CERT_FILE", IMAGE_CA_BUNDLE),
    ("PIP_CERT", IMAGE_CA_BUNDLE),
    ("REQUESTS_CA_BUNDLE", IMAGE_CA_BUNDLE),
    ("NODE_EXTRA_CA_CERTS", IMAGE_CA_BUNDLE),
)

# python3-venv: the Dockerfiles install uv from PyPI into a venv; passwd: groupadd / useradd.
PYTHON_BASE = BaseImageRecipe(
    name="dtpoc-base",
    flavour="bookworm-py311",
    packages=("python3", "python3-venv", "ca-certificates", "passwd"),
    env=_CA_ENV,
    cmd=("python3",),
)
NODE_BASE = BaseImageRecipe(
    name="dtpoc-node-base",
    flavour="bookworm-node",
    packages=("nodejs", "npm", "ca-certificates", "passwd"),
    env=_CA_ENV,
    cmd=("node",),
)


def recipe_key(recipe: BaseImageRecipe) -> str:
    return recipe.key(HOST_CA_BUNDLE.read_bytes())


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per tarball on the machine: other processes wait, then find it cached."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def rootfs_tarball(recipe: BaseImageRecipe, cache: Path | None = None) -> Path:
    """The recipe's root file system as a tarball, made with mmdebstrap once per machine (about a minute)
    and reused while the recipe and the machine's CA bundle stay the same."""
    cache = cache or images_cache()
    key = recipe_key(recipe)
    tarball = cache / f"{recipe.name}-{recipe.flavour}-{key}.tar"
    if tarball.exists():
        return tarball
    with _locked(cache / f"{tarball.name}.lock"):
        if tarball.exists():
            return tarball
        partial = tarball.with_suffix(".partial.tar")
        log = tarball.with_suffix(".log")
        copy_ca = (
            f'mkdir -p "$1{Path(IMAGE_CA_BUNDLE).parent}" && '
            f'cp {HOST_CA_BUNDLE} "$1{IMAGE_CA_BUNDLE}" && cp {HOST_CA_BUNDLE} "$1{HOST_CA_BUNDLE}"'
        )
        command = [
            "mmdebstrap",
            "--variant=apt",
            "--mode=root",
            f"--include={','.join(recipe.packages)}",
            *(f"--dpkgopt={opt}" for opt in SLIM_DPKG_OPTIONS),
            '--aptopt=Acquire::Retries "3"',
            f"--customize-hook={copy_ca}",
            recipe.suite,
            str(partial),
            *recipe.sources,
        ]
        started = time.monotonic()
        with log.open("wb") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"mmdebstrap failed ({result.returncode}); {log}:\n{tail}")
        partial.rename(tarball)
        (cache / f"{tarball.stem}.seconds").write_text(f"{time.monotonic() - started:.1f}\n")
    return tarball


def import_base(docker: Dockerd, recipe: BaseImageRecipe, cache: Path | None = None) -> str:
    """The recipe's image in `docker`'s engine (imported from the cached tarball unless already there);
    returns its reference, e.g. localhost/dtpoc-base:bookworm-py311-<key>."""
    tarball = rootfs_tarball(recipe, cache)
    ref = recipe.ref(recipe_key(recipe))
    if not docker.image_exists(ref):
        changes = [arg for change in recipe.changes() for arg in ("--change", change)]
        docker.docker("import", *changes, str(tarball), ref)
    return ref


def python_base_image(docker: Dockerd, cache: Path | None = None) -> str:
    """Debian bookworm with Python 3.11 (python3, venv, pip via ensurepip), for our Python images."""
    return import_base(docker, PYTHON_BASE, cache)


def node_base_image(docker: Dockerd, cache: Path | None = None) -> str:
    """Debian bookworm with Debian's Node.js and npm, for Node-RED and Mongo Express."""
    return import_base(docker, NODE_BASE, cache)


def local_build_config(
    docker: Dockerd, containerd_address: Path, node_images: bool = False
) -> dict[str, str]:
    """The stack config (key -> value, for `pulumi config set`) with which the program builds its images
    in `docker` on the local bases and imports them into the node's containerd at `containerd_address`."""
    config = {
        "buildImages": "true",
        "imageRegistry": "localhost",
        "dockerHost": docker.host,
        "dockerCli": str(DOCKER_CLI),
        "imageBuildNetwork": "host",
        "imageContainerdAddress": str(containerd_address),
        "pythonBaseImage": python_base_image(docker),
    }
    if node_images:
        config["nodeBaseImage"] = node_base_image(docker)
    return config
