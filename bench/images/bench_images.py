"""Benchmark of the program's image builds (not a test): run it by hand or by `make bench`.

In a dockerd of its own, on a copy of the repository's build inputs:
1. the Python base: the cached Debian tarball (`--cold-base`: made afresh in a temporary cache) and its
   import into the fresh engine;
2. the API and the operator built cold by the builder's create path (empty BuildKit cache), then
   a rebuild of both with nothing changed (BuildKit's cache only);
3. the no-change check of both images (what `pulumi up` asks the provider: content hash + presence);
4. a one-line change in services/api: which images the check reports changed, and the API's rebuild.

    uv run python bench/images/bench_images.py [--cold-base]

Results are printed with their goals and written to bench/results/images.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from components.docker_image import DockerImageProvider  # noqa: E402
from components.images import ImageBuildSettings  # noqa: E402
from localdev import base_image  # noqa: E402
from localdev.docker import DOCKER_CLI, Dockerd  # noqa: E402

SERVICES = ("api", "operator")
# Goals: the no-change check must not slow `pulumi up` down; a one-line change must not cost a cold build.
GOALS = {
    "no_change_check_s": 2.0,
    "api_one_line_rebuild_s": 60.0,
    "base_import_s": 30.0,
}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, round(time.perf_counter() - start, 2)


def copy_inputs(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock", ".dockerignore"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "services", dest / "services", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def props_for(settings: ImageBuildSettings, key: str) -> dict[str, Any]:
    return settings.image_args(key).spec().props()


def run(cold_base: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dtpoc-bench-images-") as tmp:
        root = Path(tmp)
        cache = root / "images-cache" if cold_base else None
        if cold_base:
            _, out["base_tarball_cold_s"] = timed(
                lambda: base_image.rootfs_tarball(base_image.PYTHON_BASE, cache)
            )
        _, out["base_tarball_warm_s"] = timed(
            lambda: base_image.rootfs_tarball(base_image.PYTHON_BASE, cache)
        )
        daemon, out["dockerd_start_s"] = timed(lambda: Dockerd.start(root / "dockerd"))
        try:
            base, out["base_import_s"] = timed(lambda: base_image.python_base_image(daemon, cache))
            repo = copy_inputs(root / "repo")
            settings = ImageBuildSettings(
                registry="localhost",
                docker_host=daemon.host,
                docker_cli=str(DOCKER_CLI),
                network="host",
                python_base=base,
                repo_root=repo,
            )
            provider = DockerImageProvider()
            outs = {}
            for key in SERVICES:
                created, out[f"{key}_cold_build_s"] = timed(
                    functools.partial(provider.create, props_for(settings, key))
                )
                outs[key] = created.outs
            for key in SERVICES:
                _, out[f"{key}_warm_build_s"] = timed(
                    functools.partial(provider.update, key, outs[key], outs[key])
                )

            def check() -> dict[str, bool]:
                return {k: bool(provider.diff(k, outs[k], props_for(settings, k)).changes) for k in SERVICES}

            unchanged, out["no_change_check_s"] = timed(check)
            main = repo / "services/api/main.py"
            main.write_text(main.read_text() + "# one line\n")
            changed, out["one_line_check_s"] = timed(check)
            _, out["api_one_line_rebuild_s"] = timed(
                lambda: provider.update("api", outs["api"], props_for(settings, "api"))
            )
            out["changed_when_unchanged"] = [k for k, v in unchanged.items() if v]
            out["changed_after_one_line_in_api"] = [k for k, v in changed.items() if v]
        finally:
            _, out["dockerd_stop_s"] = timed(daemon.stop)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cold-base", action="store_true", help="make the Debian base tarball afresh")
    args = parser.parse_args()
    results = run(args.cold_base)
    results["goals"] = {
        name: {"goal_s": goal, "value_s": results[name], "met": results[name] < goal}
        for name, goal in GOALS.items()
    }
    results["goals"]["only_the_api_rebuilt"] = {
        "goal": ["api"],
        "value": results["changed_after_one_line_in_api"],
        "met": results["changed_after_one_line_in_api"] == ["api"]
        and results["changed_when_unchanged"] == [],
    }
    for name, value in results.items():
        if name != "goals":
            print(f"{name:34} {value}")
    print()
    for name, goal in results["goals"].items():
        target = f"< {goal['goal_s']} s" if "goal_s" in goal else goal["goal"]
        shown = goal.get("value_s", goal.get("value"))
        print(f"{name:34} {shown!s:>12}   goal {target!s:12} {'met' if goal['met'] else 'NOT MET'}")
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "images.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(g["met"] for g in results["goals"].values()) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
