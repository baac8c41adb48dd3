"""What the handlers share while the operator runs: settings and the clients, made at startup.

One `Runtime` per DT solution (services.shared.solutions): its databases, its GridFS bucket, its folder on
the data volume and its own collection locks, so that nothing one solution's handlers read or write is
another's. The Kubernetes and MongoDB clients are the process's, shared by all (`Solutions`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.shared.files import FileStore
from services.shared.mongo import MongoSettings, connect
from services.shared.records import services_collection
from services.shared.solutions import SolutionPlace

from .kube import Kube
from .logs import RunLogStore
from .outputs import Collector
from .pods import RunPods
from .settings import OperatorSettings
from .summary import SummaryWriter


@dataclass
class Runtime:
    """One solution's handlers' state."""

    settings: OperatorSettings
    place: SolutionPlace
    # The solution's folder on the data volume, as mounted in the operator (its PVC's root in run pods).
    output_root: Path
    kube: Kube
    mongo: Any  # pymongo.AsyncMongoClient
    store: FileStore
    collector: Collector
    summaries: SummaryWriter
    pods: RunPods
    # The status last read or written per resource (see status.publish).
    published: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Services with a sync waiting for their lock: one waiting sync is enough (see runs.sync).
    queued: set[str] = field(default_factory=set)

    @property
    def records(self) -> Any:
        return services_collection(self.mongo, self.place.records_database)

    @classmethod
    def for_place(cls, settings: OperatorSettings, place: SolutionPlace, kube: Kube, mongo: Any) -> Runtime:
        output_root = settings.output_root / place.data_dir
        output_root.mkdir(parents=True, exist_ok=True)
        store = FileStore(mongo, place.files_database)
        collector = Collector(
            mongo,
            store,
            pause_after_uploads=settings.pause_after_uploads,
            limits=settings.output_limits,
            logs=RunLogStore(kube, store, settings.log_max_bytes, settings.log_read_timeout_seconds),
            records_database=place.records_database,
        )
        return cls(
            settings=settings,
            place=place,
            output_root=output_root,
            kube=kube,
            mongo=mongo,
            store=store,
            collector=collector,
            summaries=SummaryWriter(
                mongo, store, settings.summary_kpi_max_bytes, records_database=place.records_database
            ),
            pods=RunPods(services_collection(mongo, place.records_database), collector.write_lock),
        )


@dataclass
class Solutions:
    """Every solution's Runtime, by namespace, and the clients they share."""

    kube: Kube
    mongo: Any  # pymongo.AsyncMongoClient
    by_namespace: dict[str, Runtime]

    @classmethod
    async def start(
        cls, settings: OperatorSettings, mongo_settings: MongoSettings | None = None
    ) -> Solutions:
        mongo = connect(mongo_settings or MongoSettings())
        kube = await Kube.connect()
        runtimes = {
            place.namespace: Runtime.for_place(settings, place, kube, mongo) for place in settings.places
        }
        return cls(kube, mongo, runtimes)

    def for_namespace(self, namespace: str | None) -> Runtime | None:
        """The runtime of the solution that lives in `namespace`; None for any other namespace."""
        return self.by_namespace.get(namespace or "")

    def __iter__(self) -> Iterator[Runtime]:
        return iter(self.by_namespace.values())

    async def close(self) -> None:
        await self.kube.close()
        await self.mongo.close()
