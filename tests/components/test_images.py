"""The images the program builds, under Pulumi's mocks: one DockerImage per table entry named in `built`,
built from the repository's Dockerfiles, tagged by the content hash, sent where the settings say."""

from __future__ import annotations

import re
from pathlib import Path

import pulumi
import pytest

from components.docker_image import DockerImageArgs
from components.images import (
    IMAGES,
    REPO_ROOT,
    BaseImage,
    ImageBuildSettings,
    ImageSpec,
    ServiceImages,
    ServiceImagesArgs,
)

from .harness import DOCKER_IMAGE, pushed_ref, run_program

REPO = Path(__file__).resolve().parents[2]


def images_run(settings: dict | None = None, password: str | None = None, **kwargs):
    """ServiceImages with ImageBuildSettings(**settings) (the registry password as a secret Output)."""

    def program():
        secret = {"registry_password": pulumi.Output.secret(password)} if password is not None else {}
        resolved = ImageBuildSettings(**(settings or {}), **secret)
        return ServiceImages("images", ServiceImagesArgs(settings=resolved, **kwargs))

    return run_program(
        program, resolve_result=lambda i: {"refs": i.refs, "operator": i.operator_ref, "api": i.api_ref}
    )


def by_repository(run) -> dict[str, dict]:
    return {r.inputs["repository"]: r.inputs for r in run.of_type(DOCKER_IMAGE)}


def expected_hash(service: str, build_args: dict[str, str]) -> str:
    """The content hash as the builder defines it, computed here from the repository's files."""
    args = DockerImageArgs(
        context=REPO,
        dockerfile=REPO / f"services/{service}/Dockerfile",
        repository="x",
        build_args=build_args,
        labels={"org.opencontainers.image.source": "dtpoc", "app.kubernetes.io/part-of": "dtpoc"},
    )
    return args.content_hash()


def test_the_table_builds_from_the_repository_root() -> None:
    assert REPO_ROOT == REPO
    for spec in IMAGES.values():
        assert (REPO / spec.context / spec.dockerfile).is_file() or (REPO / spec.dockerfile).is_file()


def test_prebuilt_images_are_used_as_they_are() -> None:
    run = images_run(operator_image="ghcr.io/x/op:1", api_image="ghcr.io/x/api:1")
    assert run.of_type(DOCKER_IMAGE) == []
    assert run.outputs == {"refs": {}, "operator": "ghcr.io/x/op:1", "api": "ghcr.io/x/api:1"}


def test_pushed_images_are_tagged_by_content_and_referenced_by_digest() -> None:
    settings = {
        "registry": "ghcr.io/cam-digital-hospitals",
        "extra_tag": "1.2.3",
        "push": True,
        "registry_username": "ci-bot",
    }
    run = images_run(settings, password="registry-pass-123", build=True)
    images = by_repository(run)
    assert set(images) == {
        "ghcr.io/cam-digital-hospitals/dtpoc-operator",
        "ghcr.io/cam-digital-hospitals/dtpoc-api",
    }
    for service in ("operator", "api"):
        image = images[f"ghcr.io/cam-digital-hospitals/dtpoc-{service}"]
        assert image["context"] == str(REPO)
        assert image["dockerfile"] == str(REPO / f"services/{service}/Dockerfile")
        assert image["tag"] == f"ghcr.io/cam-digital-hospitals/dtpoc-{service}:{expected_hash(service, {})}"
        assert image["extraTags"] == ["1.2.3"]
        assert image["push"] is True and image["containerdAddress"] == ""
        assert image["registryUsername"] == "ci-bot" and image["registryPassword"] == "registry-pass-123"
        assert image["buildArgs"] == {}  # the Dockerfiles' public base
    holders = [r for r in run.of_type(DOCKER_IMAGE) if "registry-pass-123" in r.dumps()]
    assert len(holders) == 2 and all(r.has_secret for r in holders)
    tags = {key: images[f"ghcr.io/cam-digital-hospitals/dtpoc-{key}"]["tag"] for key in ("operator", "api")}
    assert run.outputs["operator"] == pushed_ref(tags["operator"])
    assert run.outputs["api"] == pushed_ref(tags["api"])
    assert run.outputs["refs"] == {key: pushed_ref(tag) for key, tag in tags.items()}


def test_local_builds_go_into_the_nodes_containerd_on_the_local_base() -> None:
    settings = {
        "registry": "localhost",
        "docker_host": "unix:///tmp/dtpoc-1/docker.sock",
        "docker_cli": "/usr/bin/docker",
        "network": "host",
        "containerd_address": "/tmp/dtpoc-2/containerd.sock",
        "python_base": "localhost/dtpoc-base:bookworm-py311-abc",
    }
    run = images_run(settings, build=True)
    api = by_repository(run)["localhost/dtpoc-api"]
    assert api["buildArgs"] == {"BASE": "localhost/dtpoc-base:bookworm-py311-abc"}
    assert api["tag"] == f"localhost/dtpoc-api:{expected_hash('api', api['buildArgs'])}"
    assert api["push"] is False and api["containerdAddress"] == "/tmp/dtpoc-2/containerd.sock"
    assert (api["dockerHost"], api["dockerCli"], api["network"]) == (
        "unix:///tmp/dtpoc-1/docker.sock",
        "/usr/bin/docker",
        "host",
    )
    assert run.outputs["api"] == api["tag"]


def test_the_base_is_part_of_the_content_hash() -> None:
    public = by_repository(images_run(build=True))["dtpoc-api"]["tag"]
    local = by_repository(images_run({"python_base": "localhost/b:1"}, build=True))["dtpoc-api"]
    assert re.fullmatch(r"dtpoc-api:[0-9a-f]{20}", public)
    assert local["tag"] != public


def test_only_the_named_images_are_built() -> None:
    run = images_run(build=True, built=("api",), operator_image="ghcr.io/x/op:1")
    assert set(by_repository(run)) == {"dtpoc-api"}
    assert run.outputs["operator"] == "ghcr.io/x/op:1"
    assert run.outputs["api"] == by_repository(run)["dtpoc-api"]["tag"]


def test_any_image_of_the_table_builds_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Node image from its own folder (as the stand-ins and the sample module are added)."""
    folder = tmp_path / "images" / "nodered"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text("ARG BASE=node:20-slim\nFROM ${BASE}\nRUN npm install -g node-red\n")
    spec = ImageSpec(
        "dtpoc-nodered", "images/nodered/Dockerfile", "images/nodered", BaseImage.NODE, {"V": "4"}
    )
    monkeypatch.setitem(IMAGES, "nodered", spec)
    settings = {"registry": "localhost", "node_base": "localhost/dtpoc-node-base:n-1", "repo_root": tmp_path}
    run = images_run(settings, build=True, built=("nodered",))
    image = by_repository(run)["localhost/dtpoc-nodered"]
    assert image["context"] == str(folder)
    assert image["buildArgs"] == {"V": "4", "BASE": "localhost/dtpoc-node-base:n-1"}
    assert run.outputs["refs"] == {"nodered": image["tag"]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"push": True}, "push needs a registry"),
        ({"extra_tag": "bad tag"}, "not a valid image tag"),
        ({"extra_tag": "latest"}, "not latest"),
        ({"registry": "GHCR.io/Org"}, "registry must be like"),
        ({"registry_username": "u"}, "both"),
        ({"registry": "r.example/o", "push": True, "containerd_address": "/c.sock"}, "not both"),
        ({"python_base": "Not An Image"}, "image reference"),
    ],
)
def test_impossible_build_settings_fail_early(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageBuildSettings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"operator_image": "Not An Image"}, "image reference"),
        ({"api_image": "ghcr.io/x/api:latest"}, "version tag or a digest"),
        ({"api_image": "ghcr.io/x/api"}, "version tag or a digest"),
        ({"built": ("api", "grafana")}, "unknown images"),
        ({"built": ("api", "api")}, "twice"),
    ],
)
def test_impossible_image_args_fail_early(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceImagesArgs(**kwargs)


def test_docker_image_args_check_their_paths_and_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        DockerImageArgs(context=tmp_path, dockerfile=Path("Dockerfile"), repository="x")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ValueError, match="without a tag"):
        DockerImageArgs(context=tmp_path, dockerfile=Path("Dockerfile"), repository="x:1")
    with pytest.raises(ValueError, match="build argument name"):
        DockerImageArgs(
            context=tmp_path, dockerfile=Path("Dockerfile"), repository="x", build_args={"A-B": "1"}
        )
