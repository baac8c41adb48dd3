"""Images built for real: a dockerd of our own (two side by side, nothing left mounted after), the base
image from Debian packages, and the API image built by the program's builder — the dynamic provider's
create path — running as uid 10001, loaded into a containerd, with no change reported for an unchanged
context."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from components.build_context import BuildContext
from components.config import PlatformConfig
from components.docker_image import DockerImageProvider, normalized
from components.images import ImageBuildSettings
from localdev import processes
from localdev.base_image import (
    PYTHON_BASE,
    local_build_config,
    node_base_image,
    python_base_image,
    recipe_key,
    rootfs_tarball,
)
from localdev.docker import DOCKER_CLI, Dockerd, mounts_under
from localdev.pulumi import PulumiWorkspace
from localdev.tools import REPO, Tools
from tests.components.harness import run_program


@pytest.fixture(scope="module")
def python_base(dockerd: Dockerd) -> str:
    return python_base_image(dockerd)


def test_two_daemons_run_side_by_side_and_leave_nothing_behind(dockerd: Dockerd, tmp_path: Path) -> None:
    other = Dockerd.start(tmp_path / "second")
    try:
        assert other.pid != dockerd.pid and other.socket != dockerd.socket
        assert len(str(other.socket)) < 100 and len(str(other.containerd_socket)) < 100
        for daemon in (dockerd, other):
            root = daemon.docker("info", "--format", "{{.DockerRootDir}}").stdout.decode().strip()
            assert root == str(daemon.data_root)
            # NODE.md's network rule: no bridge, so nothing but the host's and no network.
            names = daemon.docker("network", "ls", "--format", "{{.Name}}").stdout.decode().split()
            assert sorted(names) == ["host", "none"]
        containerd_pid = int((other.exec_root / "containerd" / "containerd.pid").read_text())
    finally:
        other.stop()
    assert not processes.alive(other.pid) and not processes.alive(containerd_pid)
    assert mounts_under(other.run_dir, other.state_dir) == []
    assert not other.run_dir.exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{other.cgroup_parent}"))
    assert dockerd.docker("version", "--format", "{{.Server.Version}}").returncode == 0  # still serving


def test_the_base_is_debian_with_python_3_11_cached_per_machine(dockerd: Dockerd, python_base: str) -> None:
    assert python_base == PYTHON_BASE.ref(recipe_key(PYTHON_BASE))
    assert rootfs_tarball(PYTHON_BASE).is_file()  # a second call finds the cached tarball
    version = "python3 -c 'import sys, venv; print(*sys.version_info[:2])'"
    script = f"{version}\n. /etc/os-release\necho $VERSION_CODENAME"
    out = dockerd.docker("run", "--rm", "--network", "none", python_base, "sh", "-c", script)
    assert out.stdout.decode().split() == ["3", "11", "bookworm"]


def test_the_node_base_has_debians_node_and_npm_reaching_the_registry(dockerd: Dockerd) -> None:
    """For the Node.js images (Node-RED, Mongo Express): npm reaches its registry from a build step (host
    network, through the machine's TLS-intercepting proxy, whose CA the base carries)."""
    base = node_base_image(dockerd)
    script = "node --version && npm --version && npm view --silent semver@7.6.3 version"
    out = dockerd.docker("run", "--rm", "--network", "host", base, "sh", "-c", script).stdout.decode().split()
    assert out[0].startswith("v18.") and out[2] == "7.6.3"


def test_the_context_docker_receives_is_the_one_hashed(
    dockerd: Dockerd, python_base: str, tmp_path: Path
) -> None:
    files = {
        "Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY . /ctx\n",
        "Dockerfile.dockerignore": "\n".join(
            ("**", "!app/**", "!top.txt", "app/**/*.tmp", "app/skip", "!app/skip/keep.txt", "# note", "")
        ),
        ".dockerignore": "everything-else\n",
        "app/main.py": "print()\n",
        "app/sub/deep/x.py": "",
        "app/sub/cache.tmp": "",
        "app/skip/a.txt": "",
        "app/skip/keep.txt": "",
        "top.txt": "",
        "other/y.py": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "app/link").symlink_to("main.py")
    dockerd.docker(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE={python_base}",
        "-t",
        "localhost/ctx:1",
        str(tmp_path),
    )
    listed = dockerd.docker(
        "run", "--rm", "--network", "none", "localhost/ctx:1",
        "sh", "-c", "cd /ctx && find . -mindepth 1 \\( -type f -o -type l \\) | cut -c3- | sort",
    ).stdout.decode().split()  # fmt: skip
    expected = sorted(BuildContext(tmp_path, Path("Dockerfile")).files())
    assert listed == expected
    assert "app/skip/keep.txt" in expected and "app/sub/cache.tmp" not in expected


def test_the_api_image_built_by_the_program_runs_as_10001(dockerd: Dockerd, python_base: str) -> None:
    settings = ImageBuildSettings(
        registry="localhost",
        docker_host=dockerd.host,
        docker_cli=str(DOCKER_CLI),
        network="host",
        # A containerd to load into: the one dockerd runs (namespace k8s.io is not Docker's own).
        containerd_address=str(dockerd.containerd_socket),
        python_base=python_base,
    )
    props = settings.image_args("api").spec().props()
    provider = DockerImageProvider()

    created = provider.create(props)
    ref = created.outs["ref"]
    assert ref == props["tag"] and ref.startswith("localhost/dtpoc-api:")
    assert dockerd.image_exists(ref)
    assert created.outs["tag"] == props["tag"]  # the inputs stay in the outputs for the next diff
    out = dockerd.docker(
        "run", "--rm", "--network", "none", "--read-only", ref,
        "python", "-c", "import os, services.api.main; print(os.getuid(), os.getgid())",
    ).stdout.decode().split()  # fmt: skip
    assert out == ["10001", "10001"]
    config = json.loads(dockerd.docker("image", "inspect", ref).stdout)[0]["Config"]
    assert config["User"] == "10001:10001" and config["Cmd"] == ["dtpoc-api"]

    ctr = ["ctr", "--address", str(dockerd.containerd_socket), "--namespace", "k8s.io"]

    def in_containerd() -> list[str]:
        return subprocess.run(
            [*ctr, "images", "ls", "-q"], check=True, capture_output=True, text=True
        ).stdout.split()

    assert normalized(ref) in in_containerd()
    assert provider.diff("api", created.outs, props).changes is False  # unchanged: nothing to do
    subprocess.run([*ctr, "images", "rm", ref], check=True, capture_output=True)
    assert provider.diff("api", created.outs, props).changes is True  # the node lost it: load again
    provider.update("api", created.outs, props)
    assert normalized(ref) in in_containerd()


def test_a_rebuilt_service_image_holds_the_code_it_was_tagged_for(
    dockerd: Dockerd, python_base: str, tmp_path: Path
) -> None:
    """uv keys a local project's cached wheel on pyproject.toml alone: without a forced rebuild of the
    project, a second build after a code change installed the first build's wheel under the new tag."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pyproject.toml", "uv.lock", ".dockerignore"):
        shutil.copy2(REPO / name, repo / name)
    shutil.copytree(REPO / "services", repo / "services", ignore=shutil.ignore_patterns("__pycache__"))
    settings = ImageBuildSettings(
        registry="localhost", docker_host=dockerd.host, docker_cli=str(DOCKER_CLI), network="host",
        python_base=python_base, repo_root=repo,
    )  # fmt: skip
    provider = DockerImageProvider()

    def build_and_read_marker() -> tuple[str, str]:
        ref = provider.create(settings.image_args("api").spec().props()).outs["ref"]
        out = dockerd.docker(
            "run", "--rm", "--network", "none", ref,
            "python", "-c", "import services.api.settings as s; print(getattr(s, 'BUILD_MARKER', '-'))",
        )  # fmt: skip
        return ref, out.stdout.decode().strip()

    first_ref, first = build_and_read_marker()
    with (repo / "services/api/settings.py").open("a") as f:
        f.write('\nBUILD_MARKER = "second build"\n')
    second_ref, second = build_and_read_marker()
    assert first == "-" and second_ref != first_ref
    assert second == "second build"


PROGRAM = """
from pathlib import Path

import pulumi

from components.docker_image import DockerImage, DockerImageArgs

config = pulumi.Config()
root = Path(config.require("contextRoot"))
for name in ("one", "two"):
    image = DockerImage(
        name,
        DockerImageArgs(
            context=root / name,
            dockerfile=Path("Dockerfile"),
            repository=f"localhost/dtpoc-test-{name}",
            build_args={"BASE": config.require("base")},
            docker_host=config.require("dockerHost"),
            docker_cli=config.require("dockerCli"),
            network="host",
        ),
    )
    pulumi.export(name, image.ref)
"""


@pytest.mark.pulumi
def test_pulumi_up_builds_and_a_one_line_change_rebuilds_only_that_image(
    tools: Tools, dockerd: Dockerd, python_base: str, tmp_path: Path
) -> None:
    """The real CLI with the dynamic provider: `up` builds both, an unchanged context previews as no
    change, a one-line change in one context updates only that image."""
    contexts = tmp_path / "contexts"
    for name in ("one", "two"):
        (contexts / name).mkdir(parents=True)
        (contexts / name / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n")
        (contexts / name / "hello.txt").write_text(f"hello from {name}\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(
        f"name: images\nruntime:\n  name: python\n  options:\n    virtualenv: {REPO / '.venv'}\n"
    )
    (project / "__main__.py").write_text(PROGRAM)
    workspace = PulumiWorkspace.create(tools, tmp_path / "pulumi")
    workspace.run("stack", "init", "test", cwd=project)
    for key, value in {
        "contextRoot": str(contexts),
        "base": python_base,
        "dockerHost": dockerd.host,
        "dockerCli": str(DOCKER_CLI),
    }.items():
        workspace.run("config", "set", key, value, cwd=project)

    def outputs() -> dict[str, str]:
        return json.loads(workspace.run("stack", "output", "--json", cwd=project).stdout)

    def preview_ops() -> dict[str, str]:
        steps = json.loads(workspace.run("preview", "--json", "--show-sames", cwd=project).stdout)["steps"]
        return {s["urn"].split("::")[-1]: s["op"] for s in steps if "DockerImage" in s["urn"]}

    try:
        workspace.run("up", "--yes", "--skip-preview", cwd=project)
        first = outputs()
        assert set(first) == {"one", "two"} and all(dockerd.image_exists(ref) for ref in first.values())
        assert preview_ops() == {"one": "same", "two": "same"}
        workspace.run("preview", "--expect-no-changes", cwd=project)

        with (contexts / "one" / "hello.txt").open("a") as f:
            f.write("one more line\n")
        assert preview_ops() == {"one": "update", "two": "same"}
        workspace.run("up", "--yes", "--skip-preview", cwd=project)
        second = outputs()
        assert second["two"] == first["two"] and second["one"] != first["one"]
        out = dockerd.docker("run", "--rm", "--network", "none", second["one"], "cat", "/hello.txt")
        assert out.stdout.decode() == "hello from one\none more line\n"
    finally:
        workspace.run("destroy", "--yes", "--skip-preview", cwd=project, check=False)


def test_the_local_build_config_is_what_the_program_reads(dockerd: Dockerd, python_base: str) -> None:
    config = local_build_config(dockerd, dockerd.containerd_socket)
    cfg = run_program(PlatformConfig.load, config).result
    settings = cfg.image_build_settings
    assert cfg.build_images and cfg.built_images == ("operator", "api")
    assert (settings.docker_host, settings.containerd_address, settings.python_base) == (
        dockerd.host,
        str(dockerd.containerd_socket),
        python_base,
    )
    assert settings.image_args("api").build_args == {"BASE": python_base}
