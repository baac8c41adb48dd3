"""The Analytics resource's status as the operator writes it, and how the API reports it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .crd import Phase


class ServiceState(StrEnum):
    """What the API reports for a service."""

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"


_STATE_OF_PHASE = {
    Phase.PENDING: ServiceState.PENDING,
    Phase.RUNNING: ServiceState.RUNNING,
    Phase.PROGRESSING: ServiceState.RUNNING,
    Phase.SCHEDULED: ServiceState.RUNNING,
    Phase.AVAILABLE: ServiceState.RUNNING,
    Phase.SUCCEEDED: ServiceState.OK,
    Phase.FAILED: ServiceState.ERROR,
}


# The operator's condition on a resource whose runs' pods Kubernetes refuses to create (a solution's
# ResourceQuota, say); its message is the refusal, and the API reports it while the service is pending.
PODS_CREATED = "PodsCreated"
PODS_REFUSED = "FailedCreate"


class Condition(BaseModel):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    lastTransitionTime: str | None = None


class ScenarioRuns(BaseModel):
    """One scenario of a study as the operator reports it in `status.scenarios`."""

    model_config = ConfigDict(extra="ignore")

    name: str
    firstRun: int = 0
    runs: int = 0
    active: int = 0
    succeeded: int = 0
    failed: int = 0


class AnalyticsStatus(BaseModel):
    """`status` of an Analytics resource (fields the operator owns; kopf's own keys are ignored)."""

    model_config = ConfigDict(extra="ignore")

    phase: Phase = Phase.PENDING
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    outputs: int = 0
    conditions: list[Condition] = Field(default_factory=list)
    scenarios: list[ScenarioRuns] = Field(default_factory=list)  # a study's, by scenario

    @classmethod
    def of(cls, resource: dict[str, Any] | None) -> AnalyticsStatus:
        """The status of a resource as read from the API server; a missing status is Pending."""
        status = (resource or {}).get("status") or {}
        return cls.model_validate(status) if "phase" in status else cls()

    @property
    def state(self) -> ServiceState:
        return _STATE_OF_PHASE[self.phase]

    @property
    def pods_refused(self) -> str | None:
        """Why Kubernetes refuses the runs' pods (e.g. "exceeded quota: ..."), while it does."""
        for cond in self.conditions:
            if cond.type == PODS_CREATED and cond.status == "False":
                return cond.message or cond.reason
        return None
