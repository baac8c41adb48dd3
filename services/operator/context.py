"""What the handlers share while the operator runs: settings and the clients, made at startup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.shared.files import FileStore
from services.shared.mongo import MongoSettings, connect
from services.shared.records import services_collection

from .kube import Kube
from .logs import RunLogStore
from .outputs import Collector
from .pods import RunPods
from .settings import OperatorSettings
from .summary import SummaryWriter


@dataclass
class Runtime:
    settings: OperatorSettings
    mongo_settings: MongoSettings
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
        return services_collection(self.mongo)

    @classmethod
    async def start(cls, settings: OperatorSettings, mongo_settings: MongoSettings | None = None) -> Runtime:
        mongo_settings = mongo_settings or MongoSettings()
        settings.output_root.mkdir(parents=True, exist_ok=True)
        mongo = connect(mongo_settings)
        store = FileStore(mongo)
        kube = await Kube.connect()
        collector = Collector(
            mongo,
            store,
            pause_after_uploads=settings.pause_after_uploads,
            limits=settings.output_limits,
            logs=RunLogStore(kube, store, settings.log_max_bytes, settings.log_read_timeout_seconds),
        )
        return cls(
            settings=settings,
            mongo_settings=mongo_settings,
            kube=kube,
            mongo=mongo,
            store=store,
            collector=collector,
            summaries=SummaryWriter(mongo, store, settings.summary_kpi_max_bytes),
            pods=RunPods(services_collection(mongo), collector.write_lock),
        )

    async def close(self) -> None:
        await self.kube.close()
        await self.mongo.close()
