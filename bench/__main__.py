"""`make bench`: every benchmark, one after the other (each prints its table and writes JSON to
bench/results/). Figures are ratios against a baseline measured in the same run where one exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    HERE / "pulumi" / "run.py",
    HERE / "api" / "bench_api.py",
    HERE / "solutions" / "bench_solutions.py",
    HERE / "operator" / "bench_operator.py",
    HERE / "images" / "bench_images.py",
    HERE / "node" / "bench_node.py",
    HERE / "sensors" / "bench_sensors.py",
]


def main() -> int:
    failed = []
    for script in BENCHMARKS:
        print(f"\n=== {script.relative_to(HERE.parent)}", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
