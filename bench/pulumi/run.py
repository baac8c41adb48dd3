"""Benchmark of the Pulumi platform program (not a test): run it by hand, read the numbers.

1. The whole program under mocks, in a fresh process, repeated: p50 and p95 (goal: p50 under 10 s).
2. The real CLI against a fresh local kwok cluster: `pulumi up` of the local stack, the no-op `pulumi up`
   (must report no changes), the resource count, and `pulumi destroy`.
Each goal is printed with met / not met.

    uv run python bench/pulumi/run.py [--mocks-only] [--repeat N]

Results are printed and written to bench/results/pulumi.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.stats import Goal, Spread, print_goals  # noqa: E402
from localdev.cluster import LocalCluster  # noqa: E402
from localdev.pulumi import PulumiWorkspace  # noqa: E402
from localdev.tools import find_tools  # noqa: E402
from tests.components.local_stack import LocalStack, copy_project  # noqa: E402


def bench_mocks(repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, str(REPO / "bench/pulumi/mock_program.py")],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
        ).stdout
        wall = time.perf_counter() - start
        runs.append({**json.loads(out.strip().splitlines()[-1]), "process_wall_s": round(wall, 3)})
    walls = Spread.of([r["process_wall_s"] for r in runs])
    return {
        "runs": runs,
        "process_wall_s_p50": round(walls.p50, 3),
        "process_wall_s_p95": round(walls.p95, 3),
        "process_wall_s_max": round(walls.max, 3),
        "goal_s": MOCKS_GOAL_S,
    }


MOCKS_GOAL_S = 10.0


def bench_real() -> dict:
    tools = find_tools()
    with tempfile.TemporaryDirectory(prefix="dtpoc-bench-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        cluster = LocalCluster.start(tools, root / "cluster")
        cluster_s = time.perf_counter() - start
        try:
            workspace = PulumiWorkspace.create(tools, root / "pulumi", cluster.kubeconfig)
            stack = LocalStack(workspace, copy_project(root / "project"))
            stack.init()
            stack.up("up")
            resources = stack.resources()
            stack.up("up_no_change", "--expect-no-changes")
            stack.destroy()
            stack.remove()
        finally:
            cluster.stop()
    custom = [r for r in resources if r.get("custom")]
    return {
        "cluster_start_s": round(cluster_s, 2),
        "up_s": round(stack.timings["up"], 2),
        "up_no_change_s": round(stack.timings["up_no_change"], 2),
        "destroy_s": round(stack.timings["destroy"], 2),
        "resources_total": len(resources),
        "resources_custom": len(custom),
        "resources_by_type": _count(r["type"] for r in resources),
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mocks-only", action="store_true", help="skip the real cluster part")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the mock benchmark")
    args = parser.parse_args()
    results: dict[str, Any] = {"mocks": bench_mocks(args.repeat)}
    if not args.mocks_only:
        results["local_cluster"] = bench_real()
    out = REPO / "bench" / "results" / "pulumi.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    held = [Goal("the program under mocks, p50", results["mocks"]["process_wall_s_p50"], MOCKS_GOAL_S, "s")]
    results["goals"] = [goal.as_json() for goal in held]
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print_goals(held)


if __name__ == "__main__":
    main()
