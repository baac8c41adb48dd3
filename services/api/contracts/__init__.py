"""The API's versions: v1alpha1 keeps the original platform's contract, v1beta1 has the platform's own
shapes. One implementation (services.api.routers, services.api.views) serves both."""

from __future__ import annotations

from .base import API_ROOT, Answer, Contract
from .v1alpha1 import V1Alpha1
from .v1beta1 import V1Beta1

CONTRACTS: tuple[Contract, ...] = (V1Alpha1(), V1Beta1())

__all__ = ["API_ROOT", "CONTRACTS", "Answer", "Contract", "V1Alpha1", "V1Beta1"]
