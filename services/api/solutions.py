"""What the API holds for each solution while it runs: its services collection, its file store and its
Kubernetes clients, each in the solution's own database or namespace (services.shared.solutions).

The lifespan (services.api.main) makes one `Solution` per configured solution; all share the app's one
MongoDB client and one Kubernetes ApiClient. A request acts on exactly one of them (services.api.deps),
so a lookup by id never reaches another solution's data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from kubernetes_asyncio import client

from services.shared.files import FileStore
from services.shared.records import services_collection
from services.shared.solutions import SolutionPlace

from .kube import AnalyticsClient
from .pod_logs import PodLogs
from .uploads import ensure_indexes

log = logging.getLogger(__name__)


class Solution:
    """One solution's handles for the app's life."""

    def __init__(
        self,
        place: SolutionPlace,
        mongo: Any,
        api_client: client.ApiClient | None,
        kube_timeout_seconds: float,
        kube_problem: str | None,
    ) -> None:
        self.name = place.name
        self.services: Any = services_collection(mongo, place.records_database)
        self.store = FileStore(mongo, place.files_database)
        self.analytics = AnalyticsClient(api_client, place.namespace, kube_timeout_seconds, kube_problem)
        self.pod_logs = PodLogs(api_client, place.namespace, kube_timeout_seconds, kube_problem)
        self._indexes_ready = False

    async def ensure_indexes(self) -> None:
        """The file store's indexes, once (at start, or on the first upload if MongoDB was away then)."""
        if not self._indexes_ready:
            await ensure_indexes(self.store)
            self._indexes_ready = True

    async def try_ensure_indexes(self) -> None:
        try:
            await self.ensure_indexes()
        except Exception as exc:  # MongoDB away at start: the first upload creates them
            log.warning("could not create the GridFS indexes of solution %s yet: %s", self.name, exc)


def open_solutions(
    places: Sequence[SolutionPlace],
    mongo: Any,
    api_client: client.ApiClient | None,
    kube_timeout_seconds: float,
    kube_problem: str | None,
) -> dict[str, Solution]:
    """Each solution's handles by its name (the order of `places`: the default solution first)."""
    return {
        place.name: Solution(place, mongo, api_client, kube_timeout_seconds, kube_problem) for place in places
    }


async def prepare(solutions: dict[str, Solution]) -> None:
    """Every solution's indexes, at once (with MongoDB away, start waits one timeout, not one each)."""
    await asyncio.gather(*(solution.try_ensure_indexes() for solution in solutions.values()))
