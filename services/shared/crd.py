"""The Analytics custom resource: its names and its schema, defined once.

The Pulumi component installs `crd_manifest()`, the API creates objects of it, the operator watches it,
and the tests install the very same definition into the local cluster.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from .study import MAX_SCENARIO_NAME, SCENARIO_NAME_PATTERN

GROUP = "eng.cam.ac.uk"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Analytics"
PLURAL = "analytics"
SINGULAR = "analytic"
SHORT_NAMES = ["ana"]
CRD_NAME = f"{PLURAL}.{GROUP}"

MAX_REPS = 100


class JobType(StrEnum):
    PERSISTENT = "persistent"
    SCHEDULED = "scheduled"
    ONDEMAND = "ondemand"


class Phase(StrEnum):
    """`status.phase` as the operator writes it."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SCHEDULED = "Scheduled"
    PROGRESSING = "Progressing"
    AVAILABLE = "Available"


# Kubernetes validates these rules itself (CEL), so a bad object never reaches the operator.
_JOB_TYPE_RULES = [
    {"rule": "self.jobType != 'persistent' || !has(self.reps)", "message": "persistent takes no reps"},
    {"rule": "self.jobType != 'scheduled' || has(self.reps)", "message": "scheduled needs reps"},
    {"rule": "self.jobType != 'scheduled' || has(self.schedule)", "message": "scheduled needs a schedule"},
    {"rule": "self.jobType != 'ondemand' || has(self.reps)", "message": "ondemand needs reps"},
    {"rule": "self.jobType != 'ondemand' || !has(self.port)", "message": "ondemand takes no port"},
    {"rule": "self.jobType != 'ondemand' || !has(self.schedule)", "message": "ondemand takes no schedule"},
    {
        "rule": "self.jobType == 'scheduled' || !has(self.schedule)",
        "message": "only scheduled takes a schedule",
    },
]

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

# A study (services.shared.study): ondemand, and `reps` counts every run of it.
_STUDY_RULES = [
    {"rule": "!has(self.study) || self.jobType == 'ondemand'", "message": "a study is ondemand"},
    {
        "rule": "!has(self.study) || self.reps == self.study.reps * size(self.study.scenarios)",
        "message": "reps of a study is study.reps times the number of scenarios",
    },
]


def _env_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "maxProperties": 256,
        "additionalProperties": {"type": "string", "maxLength": 32768},
        "x-kubernetes-validations": [
            {
                "rule": f"self.all(name, name.matches('{ENV_NAME_PATTERN}'))",
                "message": "env names must be valid variable names",
            }
        ],
    }


def _study_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["reps", "scenarios"],
        "properties": {
            "reps": {"type": "integer", "minimum": 1, "maximum": MAX_REPS},
            "scenarios": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_REPS,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {
                            "type": "string",
                            "maxLength": MAX_SCENARIO_NAME,
                            "pattern": SCENARIO_NAME_PATTERN,
                        },
                        "env": _env_schema(),
                    },
                },
                "x-kubernetes-validations": [
                    {
                        "rule": "self.all(a, self.exists_one(b, b.name == a.name))",
                        "message": "scenario names must be unique",
                    }
                ],
            },
        },
    }


def spec_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["image", "jobType"],
        "x-kubernetes-validations": _JOB_TYPE_RULES + _STUDY_RULES,
        "properties": {
            "image": {"type": "string", "minLength": 1, "maxLength": 512},
            "description": {"type": "string", "maxLength": 4096},
            "jobType": {"type": "string", "enum": [t.value for t in JobType]},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "reps": {"type": "integer", "minimum": 1, "maximum": MAX_REPS},
            "schedule": {"type": "string", "minLength": 1, "maxLength": 256},
            "env": _env_schema(),
            "study": _study_schema(),
        },
    }


PRINTER_COLUMNS = [
    {"name": "Type", "type": "string", "jsonPath": ".spec.jobType"},
    {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Succeeded", "type": "integer", "jsonPath": ".status.succeeded"},
    {"name": "Outputs", "type": "integer", "jsonPath": ".status.outputs"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd_spec() -> dict[str, Any]:
    """The CustomResourceDefinition's `spec`."""
    return {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"kind": KIND, "plural": PLURAL, "singular": SINGULAR, "shortNames": SHORT_NAMES},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "spec": spec_schema(),
                            # The operator owns the status; kopf also keeps its progress here.
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    }


def crd_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": crd_spec(),
    }
