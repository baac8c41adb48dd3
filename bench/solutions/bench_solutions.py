"""Benchmark: one solution's service listing is not slowed by another solution's services (issue 13).

    uv run python bench/solutions/bench_solutions.py [--services 1000] [--others 10000] [--rounds 60]

Starts its own FerretDB and local cluster (localdev) and the API as a subprocess with two solutions: the
default one (namespace `bench`) and `big` (namespace `bench-big`), each with its own random tokens.
1. `--services` services are launched into the default solution through the API; its listing (a page of
   100, and all in one page) is measured while `big` holds nothing: the single-solution baseline.
2. `--others` services are launched into `big`; the default solution's listing is measured again.
Goal: the p95 with the other solution full within 1.25x the baseline's p95 (one solution's listing reads
its own collection and namespace only). The same page straight from FerretDB is measured in both phases
(shown: how much the machine itself drifted between them). Prints each goal beside its figure and writes
JSON to bench/results/. Stops everything it started, by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.api.bench_api import api_process, local_servers  # noqa: E402
from bench.stats import Goal, Spread, print_goals  # noqa: E402
from services.shared.records import services_collection  # noqa: E402
from services.shared.solutions import default_place  # noqa: E402

NAMESPACE = "bench"
OTHER = "big"
OTHER_NAMESPACE = "bench-big"
RATIO_GOAL = 1.25
PAGES = (100, 1000)
LAUNCH = {"image": "ghcr.io/cam-digital-hospitals/digital-hosp-des", "sim": {"reps": 2}}


def solution_settings(tokens: dict[str, str]) -> dict[str, str]:
    """The API's settings for the default solution and `big`, each with its own token."""
    others = [{"name": OTHER, "namespace": OTHER_NAMESPACE, "token": tokens[OTHER]}]
    return {"API_TOKEN": tokens["default"], "API_SOLUTIONS": json.dumps(others), "API_NAMESPACE": NAMESPACE}


async def launch_many(client: httpx.AsyncClient, path: str, token: str, count: int) -> float:
    """Launch `count` services through the API, 8 at a time; the seconds it took."""
    semaphore = asyncio.Semaphore(8)
    headers = {"Authorization": f"Bearer {token}"}

    async def launch() -> None:
        async with semaphore:
            response = await client.post(f"{path}/service/launch", json=LAUNCH, headers=headers)
            assert response.status_code == 202, response.text

    started = time.perf_counter()
    await asyncio.gather(*(launch() for _ in range(count)))
    return time.perf_counter() - started


async def measure_listing(
    client: httpx.AsyncClient, token: str, services: int, rounds: int, mongo_url: str
) -> dict[str, Spread]:
    """The default solution's listing through the API, and the same page straight from FerretDB."""
    headers = {"Authorization": f"Bearer {token}"}
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    records = services_collection(mongo, default_place(NAMESPACE).records_database)
    spreads: dict[str, Spread] = {}
    try:
        for limit in PAGES:
            for _ in range(5):  # warm-up
                await client.get("/service/", params={"limit": limit}, headers=headers)
            api_times, db_times = [], []
            for _ in range(rounds):
                started = time.perf_counter()
                response = await client.get("/service/", params={"limit": limit}, headers=headers)
                api_times.append(time.perf_counter() - started)
                assert response.status_code == 200 and len(response.json()) == min(limit, services)
                started = time.perf_counter()
                await records.find({}, limit=limit).to_list()
                db_times.append(time.perf_counter() - started)
            spreads[f"api_{limit}"] = Spread.of([t * 1000 for t in api_times])
            spreads[f"db_{limit}"] = Spread.of([t * 1000 for t in db_times])
    finally:
        await mongo.close()
    return spreads


async def run(base_url: str, mongo_url: str, tokens: dict[str, str], args: argparse.Namespace) -> dict:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        seconds = await launch_many(client, "", tokens["default"], args.services)
        print(f"launched {args.services} services into the default solution in {seconds:.0f} s", flush=True)
        alone = await measure_listing(client, tokens["default"], args.services, args.rounds, mongo_url)
        seconds = await launch_many(client, f"/solutions/{OTHER}", tokens[OTHER], args.others)
        print(f"launched {args.others} services into solution {OTHER} in {seconds:.0f} s", flush=True)
        beside = await measure_listing(client, tokens["default"], args.services, args.rounds, mongo_url)
        # The other solution really holds them (its own listing, its own token).
        headers = {"Authorization": f"Bearer {tokens[OTHER]}"}
        page = await client.get(
            f"/solutions/{OTHER}/service/", params={"skip": args.others - 1, "limit": 10}, headers=headers
        )
        assert page.status_code == 200 and len(page.json()) == 1, page.text
    return {"alone": alone, "beside": beside}


def goals(result: dict, args: argparse.Namespace) -> list[Goal]:
    out = []
    for limit in PAGES:
        alone, beside = result["alone"][f"api_{limit}"], result["beside"][f"api_{limit}"]
        out.append(
            Goal(
                f"listing {min(limit, args.services)} of the default solution's {args.services} services "
                f"while {OTHER} holds {args.others}, p95 / p95 alone ({beside.p95:.1f} / {alone.p95:.1f} ms)",
                beside.p95 / alone.p95,
                RATIO_GOAL,
                "x",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--others", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()

    tokens = {name: secrets.token_urlsafe(24) for name in ("default", OTHER)}
    settings = solution_settings(tokens)
    with (
        local_servers("dtpoc-bench-solutions-", [NAMESPACE, OTHER_NAMESPACE]) as (work, ferretdb, cluster),
        api_process(ferretdb.url, cluster.kubeconfig, work / "api.log", settings) as (base_url, _),
    ):
        result = asyncio.run(run(base_url, ferretdb.url, tokens, args))

    print(f"\n{'listing (ms)':<34}{'p50 alone':>11}{'p95 alone':>11}{'p50 beside':>12}{'p95 beside':>12}")
    for key in (f"{kind}_{limit}" for limit in PAGES for kind in ("api", "db")):
        alone, beside = result["alone"][key], result["beside"][key]
        what = f"{'API' if key.startswith('api') else '  its FerretDB query'}, limit {key.split('_')[1]}"
        print(f"{what:<34}{alone.p50:>11.1f}{alone.p95:>11.1f}{beside.p50:>12.1f}{beside.p95:>12.1f}")
    held = goals(result, args)
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"solutions-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    as_json = {phase: {k: vars(v) for k, v in spreads.items()} for phase, spreads in result.items()}
    out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "services": args.services,
                "others": args.others,
                "rounds": args.rounds,
                "listing": as_json,
                "goals": [goal.as_json() for goal in held],
            },
            indent=2,
        )
    )
    print_goals(held)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
