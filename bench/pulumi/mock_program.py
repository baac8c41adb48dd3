"""Runs the real __main__.py once under Pulumi's mocks and prints the timings as JSON (one fresh process:
imports included). Used by run.py; runnable on its own."""

from __future__ import annotations

import json
import runpy
import sys
import time
from pathlib import Path

START = time.perf_counter()

import pulumi  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.components.harness import run_program  # noqa: E402

IMPORTED = time.perf_counter()


def main() -> None:
    def program() -> None:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")

    config = {"ingressController": "none"} if "--local" in sys.argv else {}
    begin = time.perf_counter()
    run = run_program(program, config)
    end = time.perf_counter()
    print(
        json.dumps(
            {
                "imports_s": round(IMPORTED - START, 3),
                "program_s": round(end - begin, 3),
                "total_s": round(end - START, 3),
                "resources": len(run.resources),
                "kubernetes_objects": sum(1 for _ in run.k8s_objects()),
                "pulumi_version": pulumi.__version__ if hasattr(pulumi, "__version__") else None,
            }
        )
    )


if __name__ == "__main__":
    main()
