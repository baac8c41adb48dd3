"""The operator's settings: one typed object read from the environment (prefix OPERATOR_).

MongoDB is reached through `services.shared.mongo.MongoSettings` (prefix MONGODB_), like the API.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.shared.solutions import SolutionPlace, all_places

from .outputs import OutputLimits


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATOR_", extra="ignore")

    # The default solution's namespace (the platform's): Analytics resources are watched there and in each
    # of `solutions`' namespaces, and their children made beside them.
    namespace: str = "default"
    # The other DT solutions, as JSON: [{"name": ..., "namespace": ...}] (services.shared.solutions). Given,
    # not discovered: the operator holds Roles in these namespaces only, nothing cluster-wide.
    solutions: list[SolutionPlace] = []
    # The platform's data volume as mounted in the operator; a solution's runs are in its `data_dir` there.
    output_root: Path = Path("/data")
    # The data PVC's name in each solution's namespace, mounted by run pods (its root: the solution's folder).
    data_pvc: str = "orchestrator-data"

    max_parallelism: int = Field(default=4, ge=1, le=100)
    # Retries of one run index before it counts as failed (Job backoffLimitPerIndex).
    run_retries: int = Field(default=0, ge=0, le=10)
    ingress_class: str = "nginx"
    # imagePullPolicy of module containers; None leaves Kubernetes' default (Always for :latest). Where
    # images are loaded into the node and nothing may be pulled (the local stack) it is Never.
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    # Persistent modules' Ingresses: a host of their own (never the platform's: a module's pages must not
    # run in the platform's origin) and, with a TLS Secret for it, HTTPS with HTTP redirected.
    ingress_host: str | None = None
    ingress_tls_secret: str | None = None

    # Fallback sweep over every resource (the watch on Jobs and pods is the fast path).
    sweep_seconds: float = Field(default=30.0, gt=0)
    # How long to wait before looking again for a services record that does not exist yet.
    record_wait_seconds: float = Field(default=2.0, gt=0)
    # Retry delay after an unexpected error (MongoDB or Kubernetes briefly away).
    error_retry_seconds: float = Field(default=5.0, gt=0)

    liveness_host: str = "0.0.0.0"  # noqa: S104 - the kubelet probes it from outside the pod
    liveness_port: int = 8080

    # Watch timeouts: the API server closes a watch after server_timeout; the client gives up on a
    # silent connection after client_timeout and reconnects (watches can go silent without them).
    watch_server_timeout: int = 300
    watch_client_timeout: int = 330
    watch_connect_timeout: int = 10

    # Run pods: non-root, with requests and limits.
    run_user: int = 10001  # the same uid as the operator (the platform's APP_UID): it reads their outputs
    run_group: int = 10001
    run_cpu_request: str = "100m"
    run_memory_request: str = "256Mi"
    run_cpu_limit: str = "2"
    run_memory_limit: str = "2Gi"
    # Finished Jobs of a scheduled service kept by its CronJob.
    cron_history: int = Field(default=3, ge=1, le=20)

    # What one run may leave in /output to be collected; a run beyond a limit fails with the reason.
    output_max_files: int = Field(default=1000, ge=1)
    output_max_bytes: int = Field(default=1024**3, ge=1)
    output_max_depth: int = Field(default=16, ge=1, le=64)
    # The services record keeps every run's output entries: this cap keeps it far below 16 MiB.
    output_max_record_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=12 * 1024 * 1024)

    # A study's summary reads each run's KPI JSON whole: a larger one is noted and left out.
    summary_kpi_max_bytes: int = Field(default=1024 * 1024, ge=1)
    # A run's container log is stored with its outputs, up to this many bytes (the first and the last
    # half of a longer log, the cut marked in it).
    log_max_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Reading one run's log from its pod (through the API server) gives up after this long.
    log_read_timeout_seconds: float = Field(default=60.0, gt=0)

    # Fault injection for the restart tests only: after this many files uploaded by this process for one
    # solution, that solution's collection stops dead (before the record is updated) so that a test can
    # SIGKILL the operator at a known point. Unset in every deployment.
    pause_after_uploads: int | None = None

    @model_validator(mode="after")
    def _unique_places(self) -> OperatorSettings:
        self.places  # noqa: B018 - a name or namespace used twice fails at startup, not at the first event
        return self

    @property
    def places(self) -> list[SolutionPlace]:
        """Every solution served, the default one first."""
        return all_places(self.namespace, self.solutions)

    @property
    def output_limits(self) -> OutputLimits:
        return OutputLimits(
            max_files=self.output_max_files,
            max_bytes=self.output_max_bytes,
            max_depth=self.output_max_depth,
            max_record_bytes=self.output_max_record_bytes,
        )

    @property
    def liveness_endpoint(self) -> str:
        return f"http://{self.liveness_host}:{self.liveness_port}/healthz"


@lru_cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
