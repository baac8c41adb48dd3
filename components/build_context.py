"""What a `docker build` would send as its context, and a content hash of it.

The image builder (docker_image.py) tags each image with this hash: an unchanged context is the same tag
(no change on the next `pulumi up`), a one-line change in one service's files changes only the tags of the
images whose context holds that file.

The ignore file is the one BuildKit reads: `<Dockerfile>.dockerignore` beside the Dockerfile if it exists,
else `<context>/.dockerignore`. Its patterns follow Docker's rules: Go `filepath.Match` syntax plus `**`
(any number of directories), `!` re-includes, the last matching pattern decides, and a pattern that
matches a directory matches everything below it. Where in doubt a file counts as sent: one hashed too many
costs a rebuild, one missed would skip a needed one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

_META = set("*?[\\")


def _translate(pattern: str) -> re.Pattern[str]:
    """A Docker ignore pattern (already cleaned) as an anchored regular expression."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1  # `**/` is `**`
                # `**` at the end takes everything; elsewhere any number of whole directories.
                out.append(".*" if i + 1 >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


@dataclass(frozen=True)
class IgnorePattern:
    text: str  # cleaned, without the leading `!`
    exclude: bool
    regex: re.Pattern[str] = field(compare=False)

    @classmethod
    def parse(cls, line: str) -> IgnorePattern | None:
        line = line.strip()
        if not line or line.startswith("#"):
            return None
        exclude = not line.startswith("!")
        if not exclude:
            line = line[1:].strip()
        text = os.path.normpath(line).lstrip("/")
        if text in ("", "."):
            return None
        return cls(text, exclude, _translate(text))

    def matches(self, path: str) -> bool:
        """`path` (relative, with `/`) or one of the directories above it matches."""
        parts = path.split("/")
        return any(self.regex.match("/".join(parts[:n])) for n in range(len(parts), 0, -1))

    @property
    def literal_prefix(self) -> str:
        """The pattern up to its first wildcard."""
        for i, ch in enumerate(self.text):
            if ch in _META:
                return self.text[:i]
        return self.text


@dataclass(frozen=True)
class DockerIgnore:
    patterns: tuple[IgnorePattern, ...] = ()

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        parsed = (IgnorePattern.parse(line) for line in text.splitlines())
        return cls(tuple(p for p in parsed if p is not None))

    def excluded(self, path: str) -> bool:
        verdict = False
        for pattern in self.patterns:
            if pattern.matches(path):
                verdict = pattern.exclude
        return verdict

    def may_reinclude_below(self, directory: str) -> bool:
        """Some `!` pattern could match a path inside `directory` (so an excluded directory is walked)."""
        inside = directory + "/"
        for pattern in self.patterns:
            if pattern.exclude:
                continue
            prefix = pattern.literal_prefix
            if prefix.startswith(inside) or inside.startswith(prefix) or not prefix:
                return True
        return False


@dataclass(frozen=True)
class BuildContext:
    """A build context folder and the Dockerfile building from it (absolute, or relative to `root`)."""

    root: Path
    dockerfile: Path

    def __post_init__(self) -> None:
        root = self.root.resolve()
        dockerfile = self.dockerfile if self.dockerfile.is_absolute() else root / self.dockerfile
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "dockerfile", dockerfile.resolve())
        if not root.is_dir():
            raise ValueError(f"build context {root} is not a folder")
        if not self.dockerfile.is_file():
            raise ValueError(f"Dockerfile {self.dockerfile} does not exist")

    @property
    def ignore_file(self) -> Path | None:
        for candidate in (Path(f"{self.dockerfile}.dockerignore"), self.root / ".dockerignore"):
            if candidate.is_file():
                return candidate
        return None

    @cached_property
    def ignore(self) -> DockerIgnore:
        ignore_file = self.ignore_file
        return DockerIgnore.parse(ignore_file.read_text()) if ignore_file else DockerIgnore()

    def files(self) -> Iterator[str]:
        """The context's files and symlinks that are sent (relative paths with `/`), sorted."""
        ignore = self.ignore
        for folder, dirs, names in os.walk(self.root):
            rel_folder = os.path.relpath(folder, self.root)
            rel_folder = "" if rel_folder == "." else rel_folder + "/"
            kept_dirs = []
            for d in sorted(dirs):
                rel = rel_folder + d
                if os.path.islink(os.path.join(folder, d)):
                    names.append(d)  # a symlink is sent as a link, never followed
                elif not ignore.excluded(rel) or ignore.may_reinclude_below(rel):
                    kept_dirs.append(d)
            dirs[:] = kept_dirs
            for name in sorted(names):
                rel = rel_folder + name
                if not ignore.excluded(rel):
                    yield rel

    @cached_property
    def read_by_dockerfile(self) -> DockerIgnore | None:
        """The context paths the Dockerfile reads — COPY/ADD sources (not `--from` another stage, not
        URLs) and RUN bind mounts — as patterns; None when it reads the whole context. Only these count
        towards the tag, so two images sharing one context (the services) rebuild only for their own
        files."""
        lines: list[str] = []
        for line in self.dockerfile.read_text().splitlines():
            if line.lstrip().startswith("#"):
                continue  # comments may sit between continuation lines
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line
            else:
                lines.append(line)
        sources: list[str] = []
        for line in lines:
            keyword, _, rest = line.strip().partition(" ")
            keyword = keyword.upper()
            if keyword == "RUN":
                for mount in re.findall(r"--mount=(\S+)", rest):
                    options = dict(kv.partition("=")[::2] for kv in mount.split(","))
                    if options.get("type") == "bind" and "from" not in options:
                        sources.append(options.get("source") or ".")
            elif keyword in ("COPY", "ADD"):
                words = json.loads(rest) if rest.lstrip().startswith("[") else rest.split()
                if any(w.startswith("--from") for w in words):
                    continue
                paths = [w for w in words if not w.startswith("--")][:-1]
                sources += [p for p in paths if not re.match(r"^[a-z]+://", p)]
        cleaned = [os.path.normpath(src).lstrip("/") for src in sources]
        if any(src in ("", ".") for src in cleaned):
            return None
        return DockerIgnore.parse("\n".join(cleaned))

    def digest(
        self, build_args: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
    ) -> str:
        """sha256 over the sent files the Dockerfile reads (path, executable bit, content or link
        target), the Dockerfile, the ignore file and the build arguments (and `extra`, e.g. the target
        stage or labels)."""
        h = hashlib.sha256()

        def add(kind: str, name: str, payload: bytes) -> None:
            h.update(f"{kind}\0{name}\0{len(payload)}\0".encode())
            h.update(payload)

        add("dockerfile", "", self.dockerfile.read_bytes())
        ignore_file = self.ignore_file
        add("ignore", "", ignore_file.read_bytes() if ignore_file else b"")
        add("args", "", json.dumps(dict(build_args or {}), sort_keys=True).encode())
        add("extra", "", json.dumps(dict(extra or {}), sort_keys=True).encode())
        read = self.read_by_dockerfile
        for rel in sorted(self.files()):
            if read is not None and not read.excluded(rel):  # `excluded` here: matched by a source
                continue
            path = self.root / rel
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                add("link", rel, os.readlink(path).encode())
            elif stat.S_ISREG(info.st_mode):
                executable = "x" if info.st_mode & 0o111 else "-"
                add(f"file{executable}", rel, hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()
