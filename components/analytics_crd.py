"""The Analytics CustomResourceDefinition, exactly as services/shared/crd.py defines it (one definition for
the program, the operator, the API and the tests)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from services.shared import crd

from .common import child_options, labels


class AnalyticsCrd(pulumi.ComponentResource):
    """`analytics.eng.cam.ac.uk` (kind Analytics, short name `ana`). Output: `crd_name`."""

    crd_name: pulumi.Output[str]
    definition: k8s.apiextensions.v1.CustomResourceDefinition

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:orchestrator:AnalyticsCrd", name, None, opts)
        self.definition = k8s.apiextensions.v1.CustomResourceDefinition(
            f"{name}-definition",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=crd.CRD_NAME, labels=labels("orchestrator", "control-plane")
            ),
            spec=crd.crd_spec(),
            opts=child_options(self, opts),
        )
        self.crd_name = self.definition.metadata.name
        self.register_outputs({"crd_name": self.crd_name})
