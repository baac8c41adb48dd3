"""The content hash that tags the built images: the same context gives the same tag, a one-line change in
one service changes only that service's tag, and the ignore files decide what counts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from components.build_context import BuildContext, DockerIgnore
from components.images import ImageBuildSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("tests", "tests/a/b.py", True),  # a matching directory takes what is below it
        ("tests", "src/tests/b.py", False),  # patterns are anchored at the context root
        ("/tests", "tests/b.py", True),  # a leading slash changes nothing
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),  # `*` stays within one folder
        ("**/*.md", "docs/x/README.md", True),
        ("**/*.md", "README.md", True),  # `**/` also matches no folder at all
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**", "a/x/y", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab].txt", "b.txt", True),
        ("[!ab].txt", "c.txt", True),
        ("[!ab].txt", "a.txt", False),
        ("a.b", "axb", False),  # a dot is a dot
        ("**\n!keep/**", "keep/x/y.py", False),  # the last matching pattern decides
        ("**\n!keep/**\nkeep/**/*.pyc", "keep/x/y.pyc", True),
        ("# comment\n\n  *.log  ", "a.log", True),
        ("!x", "y", False),
    ],
)
def test_ignore_patterns_follow_dockers_rules(patterns: str, path: str, excluded: bool) -> None:
    assert DockerIgnore.parse(patterns).excluded(path) is excluded


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_dockerfiles_own_ignore_file_wins_over_the_contexts(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".dockerignore": "secret.txt\n",
            "app/Dockerfile": "FROM scratch\n",
            "app/Dockerfile.dockerignore": "**\n!app/**\napp/**/*.tmp\n",
            "app/main.py": "x = 1\n",
            "app/cache.tmp": "",
            "secret.txt": "",
            "other.py": "",
        },
    )
    own = BuildContext(tmp_path, Path("app/Dockerfile"))
    assert own.ignore_file == tmp_path / "app/Dockerfile.dockerignore"
    assert list(own.files()) == ["app/Dockerfile", "app/Dockerfile.dockerignore", "app/main.py"]
    (tmp_path / "app/Dockerfile.dockerignore").unlink()
    shared = BuildContext(tmp_path, Path("app/Dockerfile"))
    assert shared.ignore_file == tmp_path / ".dockerignore"
    assert "secret.txt" not in set(shared.files()) and "other.py" in set(shared.files())


def test_what_is_hashed(tmp_path: Path) -> None:
    dockerfile = "FROM scratch\nCOPY . /\n"
    write(tmp_path, {"Dockerfile": dockerfile, ".dockerignore": "*.log\n", "run.sh": "echo\n"})
    context = BuildContext(tmp_path, Path("Dockerfile"))
    first = context.digest({"BASE": "a"})
    assert BuildContext(tmp_path, Path("Dockerfile")).digest({"BASE": "a"}) == first  # deterministic
    assert context.digest({"BASE": "b"}) != first  # build arguments count (the base among them)
    assert context.digest({"BASE": "a"}, {"target": "x"}) != first
    (tmp_path / "debug.log").write_text("ignored")
    assert context.digest({"BASE": "a"}) == first  # an ignored file does not
    (tmp_path / "run.sh").chmod(0o755)
    assert context.digest({"BASE": "a"}) != first  # the executable bit does (COPY keeps it)
    (tmp_path / "run.sh").chmod(0o644)
    os.symlink("run.sh", tmp_path / "link")
    assert context.digest({"BASE": "a"}) != first  # a symlink is sent as a link
    (tmp_path / "link").unlink()
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY . /\nENV A=1\n")
    assert context.digest({"BASE": "a"}) != first


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The files the service images are built from, plus neighbours that must not count."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("pyproject.toml", "uv.lock", ".dockerignore", "README.md", "Pulumi.yaml"):
        shutil.copy2(REPO / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("services", "components"):
        shutil.copytree(REPO / name, root / name, ignore=ignore)
    return root


def tags(root: Path) -> dict[str, str]:
    settings = ImageBuildSettings(
        registry="localhost", python_base="localhost/dtpoc-base:b-1", repo_root=root
    )
    return {key: settings.image_args(key).spec().tag for key in ("operator", "api")}


def append_line(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


def test_an_unchanged_context_keeps_its_tags(repo_copy: Path) -> None:
    before = tags(repo_copy)
    assert before == tags(repo_copy)
    assert before["api"] != before["operator"]
    # The repository's own checkout gives the same tags: only the files count, not where they are.
    assert tags(REPO) == before


def test_a_one_line_change_in_the_api_rebuilds_only_the_api(repo_copy: Path) -> None:
    before = tags(repo_copy)
    append_line(repo_copy / "services/api/main.py", "# one line")
    after = tags(repo_copy)
    assert after["api"] != before["api"]
    assert after["operator"] == before["operator"]


def test_a_one_line_change_in_the_operator_rebuilds_only_the_operator(repo_copy: Path) -> None:
    before = tags(repo_copy)
    append_line(repo_copy / "services/operator/main.py", "# one line")
    after = tags(repo_copy)
    assert after["operator"] != before["operator"] and after["api"] == before["api"]


def test_only_what_the_dockerfile_reads_counts(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Dockerfile": (
                "FROM base AS build\n"
                "RUN --mount=type=cache,target=/c \\\n"
                "# a comment between continuation lines\n"
                "    --mount=type=bind,source=lock.txt,target=/lock.txt true\n"
                'COPY ["app", "/app"]\n'
                "COPY --chown=1:1 *.py conf/a.toml /opt/\n"
                "ADD https://example.org/tool.tgz /tmp/\n"
                "FROM base\n"
                "COPY --from=build /app /app\n"
            ),
            "lock.txt": "1",
            "app/main.py": "x = 1\n",
            "run.py": "",
            "conf/a.toml": "",
            "conf/b.toml": "",
            "docs/readme.md": "",
            "sub/deep.py": "",
        },
    )
    context = BuildContext(tmp_path, Path("Dockerfile"))
    read = context.read_by_dockerfile
    assert read is not None
    assert sorted(f for f in context.files() if read.excluded(f)) == [
        "app/main.py", "conf/a.toml", "lock.txt", "run.py",
    ]  # fmt: skip
    first = context.digest()
    for unread in ("conf/b.toml", "docs/readme.md", "sub/deep.py"):
        append_line(tmp_path / unread, "changed")
        assert BuildContext(tmp_path, Path("Dockerfile")).digest() == first, unread
    for read_file in ("lock.txt", "app/main.py", "run.py", "conf/a.toml"):
        append_line(tmp_path / read_file, "changed")
        changed = BuildContext(tmp_path, Path("Dockerfile")).digest()
        assert changed != first, read_file
        first = changed


def test_shared_code_and_the_lock_file_rebuild_both(repo_copy: Path) -> None:
    before = tags(repo_copy)
    append_line(repo_copy / "services/shared/names.py", "# one line")
    after_shared = tags(repo_copy)
    assert all(after_shared[k] != before[k] for k in before)
    append_line(repo_copy / "uv.lock", "")
    assert all(tags(repo_copy)[k] != after_shared[k] for k in before)


def test_files_outside_the_images_change_nothing(repo_copy: Path) -> None:
    before = tags(repo_copy)
    append_line(repo_copy / "components/platform.py", "# the program, not the services")
    append_line(repo_copy / "README.md", "more docs")
    write(repo_copy, {"a_new_top_level_file.txt": "x", "modules/new/run.py": "print()\n"})
    pycache = repo_copy / "services/api/__pycache__"
    pycache.mkdir()
    (pycache / "main.cpython-311.pyc").write_bytes(b"\0")
    (repo_copy / "services/api/stale.pyc").write_bytes(b"\0")
    assert tags(repo_copy) == before
