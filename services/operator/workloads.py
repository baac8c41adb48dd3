"""Pure builders: an Analytics spec (plus the operator's settings) in, child manifests out.

- `ondemand`   -> Job `ana-<sid>`: Indexed, completions = reps, parallelism = min(reps, max), each
  index retried `run_retries` times (backoffLimitPerIndex), a replacement pod only once the old one
  is gone (two pods never write one run's output), no TTL (the Job stays until its resource goes,
  so that outputs are always collected from it first).
- `ondemand` with `study` -> one such Job per scenario, `ana-<sid>-<k>` (see `study`): completions =
  the study's reps, SCENARIO and the scenario's env in its template, its own /input; the service's
  parallelism is shared among them (each max(1, max // scenarios)).
- `scheduled`  -> CronJob `ana-<sid>` with the resource's schedule, concurrencyPolicy Forbid and the
  same run template; each Job's runs write to their own directory (see `layout`).
- `persistent` -> Deployment `ana-<sid>` (one replica, Recreate: one writer of its output directory),
  and with `port` a Service `ana-<sid>` and an Ingress `ana-<sid>` at `/services/<sid>`.

Every child carries the platform's labels; owner references are added by the caller (kopf.adopt).
Modules are untrusted code. Run pods get their files (/input, /output) and their run identity, and
nothing else: no database address or credentials, no Secret, no service account token. They are
non-root, without privilege escalation or capabilities, with resource requests and limits (Pod
Security "restricted"). Their labels are made here from fixed keys only, none of which a platform
selector uses (`PLATFORM_APP_LABEL` is never set on a module), so no image name makes a module pod
a backend of a platform Service or a client a NetworkPolicy admits. The resource's env goes in as
plain `env` entries with `$` escaped, so that a value arrives in the container exactly as written
(no `$(VAR)` expansion, and never a shell).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from services.shared.crd import MAX_REPS, JobType
from services.shared.names import INPUT_DIR, MANAGED_BY_OPERATOR, OUTPUT_DIR, PART_OF, SERVICE_ID_LABEL
from services.shared.study import SCENARIO_ENV
from services.shared.validation import RESERVED_ENV_NAMES, is_cron, is_env_name

from . import layout
from .settings import OperatorSettings
from .study import FIRST_RUN_ANNOTATION, SCENARIO_LABEL, InvalidStudy, Scenario, Study, job_name

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CONTAINER = "module"
DATA_VOLUME = "data"

# Set by the platform in every run pod; a resource may not override them.
RESERVED_ENV = RESERVED_ENV_NAMES


class InvalidSpec(ValueError):
    """The resource asks for something the operator will not run."""


@dataclass(frozen=True)
class AnalyticsSpec:
    """The parts of an Analytics spec that shape its workload, checked again here."""

    image: str
    job_type: JobType
    reps: int | None = None
    port: int | None = None
    schedule: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    study: Study | None = None

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> AnalyticsSpec:
        image = spec.get("image")
        if not isinstance(image, str) or not image.strip():
            raise InvalidSpec("spec.image is required")
        try:
            job_type = JobType(str(spec.get("jobType")))
        except ValueError:
            raise InvalidSpec(f"spec.jobType must be one of {', '.join(JobType)}") from None
        reps, port, schedule = spec.get("reps"), spec.get("port"), spec.get("schedule")
        env = dict(spec.get("env") or {})

        if job_type is JobType.PERSISTENT:
            if reps is not None:
                raise InvalidSpec("persistent takes no reps")
        elif not isinstance(reps, int) or not 1 <= reps <= MAX_REPS:
            raise InvalidSpec(f"{job_type} needs reps between 1 and {MAX_REPS}")
        if port is not None and (
            job_type is JobType.ONDEMAND or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            raise InvalidSpec("port must be 1..65535 and is not taken by ondemand")
        if job_type is JobType.SCHEDULED:
            if not isinstance(schedule, str) or not is_cron(schedule):
                raise InvalidSpec(f"spec.schedule {schedule!r} is not a valid cron expression")
        elif schedule is not None:
            raise InvalidSpec("only scheduled takes a schedule")
        for name, value in env.items():
            if not is_env_name(name):
                raise InvalidSpec(f"env name {name!r} is not a valid variable name")
            if name in RESERVED_ENV:
                raise InvalidSpec(f"env name {name} is set by the platform and cannot be overridden")
            if not isinstance(value, str):
                raise InvalidSpec(f"env {name} must be a string")
        study = None
        if spec.get("study") is not None:
            if job_type is not JobType.ONDEMAND:
                raise InvalidSpec("only ondemand takes a study")
            try:
                study = Study.parse(spec["study"], reps, env)
            except InvalidStudy as e:
                raise InvalidSpec(str(e)) from None
        return cls(
            image=image, job_type=job_type, reps=reps, port=port, schedule=schedule, env=env, study=study
        )


def child_name(sid: str) -> str:
    """Every child of resource `sid` is named `ana-<sid>` (kinds differ, so names never clash)."""
    return f"ana-{sid}"


def ingress_path(sid: str) -> str:
    return f"/services/{sid}"


def _label_value(text: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[-63:].strip("-_.")
    return value or "analytics"


def module_name(image: str) -> str:
    """`ghcr.io/org/digital-hosp-des:latest` -> `digital-hosp-des`."""
    last = image.rsplit("/", 1)[-1]
    return _label_value(last.split("@", 1)[0].split(":", 1)[0])


def selector_labels(sid: str) -> dict[str, str]:
    """What selects a service's pods; never changes over the resource's life."""
    return {SERVICE_ID_LABEL: sid, MANAGED_BY_LABEL: MANAGED_BY_OPERATOR}


def labels(sid: str, spec: AnalyticsSpec, scenario: ScenarioRun | None = None) -> dict[str, str]:
    """A module's labels: fixed keys, values from the image name, the service id and a study's scenario
    name (a DNS label, so a valid label value) only."""
    made = {
        "app.kubernetes.io/name": module_name(spec.image),
        "app.kubernetes.io/component": str(spec.job_type),
        "app.kubernetes.io/part-of": PART_OF,
        **selector_labels(sid),
    }
    if scenario is not None:
        made[SCENARIO_LABEL] = scenario.scenario.name
    return made


def escape_env_value(value: str) -> str:
    """Kubernetes expands `$(VAR)` in env values and reads `$$` as `$`: doubling every `$` keeps the
    value literal."""
    return value.replace("$", "$$")


def _platform_env(sid: str) -> list[dict[str, Any]]:
    """What the platform tells every run: its service id (the module contract is files, so nothing
    about the platform's databases)."""
    return [{"name": "SERVICE_ID", "value": sid}]


def _run_identity_env(job_type: JobType, sid: str) -> list[dict[str, Any]]:
    """RUN_INDEX, JOB_NAME and RUN_ID (in that order: RUN_ID is made of the other two)."""
    if job_type is JobType.PERSISTENT:
        index: dict[str, Any] = {"name": "RUN_INDEX", "value": str(layout.PERSISTENT_RUN)}
        job: dict[str, Any] = {"name": "JOB_NAME", "value": child_name(sid)}
    else:
        index = {
            "name": "RUN_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}},
        }
        job = {
            "name": "JOB_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}},
        }
    return [index, job, {"name": "RUN_ID", "value": "$(JOB_NAME)-$(RUN_INDEX)"}]


@dataclass(frozen=True)
class ScenarioRun:
    """What makes the runs of one scenario of a study differ from the service's other runs."""

    index: int
    scenario: Scenario
    first_run: int


def pod_template(
    sid: str, spec: AnalyticsSpec, settings: OperatorSettings, scenario: ScenarioRun | None = None
) -> dict[str, Any]:
    """The pod template shared by the three kinds of workload (and a study's scenarios)."""
    if spec.job_type is JobType.ONDEMAND and scenario is None:
        output_mount: dict[str, Any] = {"subPathExpr": layout.ondemand_output_sub_path_expr(sid)}
    elif spec.job_type is JobType.ONDEMAND or spec.job_type is JobType.SCHEDULED:
        # A CronJob's Jobs and a study's Jobs: a folder of runs per Job.
        output_mount = {"subPathExpr": layout.scheduled_output_sub_path_expr(sid)}
    else:
        output_mount = {"subPath": layout.persistent_output_sub_path(sid)}

    env = dict(spec.env)
    scenario_env: list[dict[str, Any]] = []
    input_sub_path = layout.input_sub_path(sid)
    if scenario is not None:
        env.update(scenario.scenario.env)
        scenario_env = [{"name": SCENARIO_ENV, "value": scenario.scenario.name}]
        input_sub_path = layout.scenario_input_sub_path(sid, scenario.scenario.name)

    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        **({"imagePullPolicy": settings.image_pull_policy} if settings.image_pull_policy else {}),
        "env": [
            *({"name": name, "value": escape_env_value(value)} for name, value in sorted(env.items())),
            *scenario_env,
            *_run_identity_env(spec.job_type, sid),
            *_platform_env(sid),
        ],
        "volumeMounts": [
            {
                "name": DATA_VOLUME,
                "mountPath": INPUT_DIR,
                "subPath": input_sub_path,
                "readOnly": True,
            },
            {"name": DATA_VOLUME, "mountPath": OUTPUT_DIR, **output_mount},
        ],
        "resources": {
            "requests": {"cpu": settings.run_cpu_request, "memory": settings.run_memory_request},
            "limits": {"cpu": settings.run_cpu_limit, "memory": settings.run_memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if spec.port is not None:
        container["ports"] = [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}]
        container["readinessProbe"] = {"tcpSocket": {"port": spec.port}, "periodSeconds": 10}
        if "BASE_PATH" not in spec.env:
            container["env"].append({"name": "BASE_PATH", "value": ingress_path(sid)})

    metadata: dict[str, Any] = {"labels": labels(sid, spec, scenario)}
    if scenario is not None:
        metadata["annotations"] = {FIRST_RUN_ANNOTATION: str(scenario.first_run)}
    return {
        "metadata": metadata,
        "spec": {
            "restartPolicy": "Always" if spec.job_type is JobType.PERSISTENT else "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": settings.run_user,
                "runAsGroup": settings.run_group,
                "fsGroup": settings.run_group,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [{"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": settings.data_pvc}}],
        },
    }


def job_spec(
    sid: str, spec: AnalyticsSpec, settings: OperatorSettings, scenario: ScenarioRun | None = None
) -> dict[str, Any]:
    if scenario is not None and spec.study is not None:
        reps = spec.study.reps
        parallelism = max(1, settings.max_parallelism // len(spec.study.scenarios))
    else:
        reps = spec.reps or 1
        parallelism = settings.max_parallelism
    return {
        "completionMode": "Indexed",
        "completions": reps,
        "parallelism": min(reps, parallelism),
        "backoffLimitPerIndex": settings.run_retries,
        "podReplacementPolicy": "Failed",
        "template": pod_template(sid, spec, settings, scenario),
    }


def _metadata(sid: str, spec: AnalyticsSpec) -> dict[str, Any]:
    return {"name": child_name(sid), "labels": labels(sid, spec)}


def job(sid: str, spec: AnalyticsSpec, settings: OperatorSettings) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(sid, spec),
        "spec": job_spec(sid, spec, settings),
    }


def cronjob(sid: str, spec: AnalyticsSpec, settings: OperatorSettings) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(sid, spec),
        "spec": {
            "schedule": spec.schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 300,
            "successfulJobsHistoryLimit": settings.cron_history,
            "failedJobsHistoryLimit": settings.cron_history,
            "jobTemplate": {
                "metadata": {"labels": labels(sid, spec)},
                "spec": job_spec(sid, spec, settings),
            },
        },
    }


def deployment(sid: str, spec: AnalyticsSpec, settings: OperatorSettings) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(sid, spec),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(sid)},
            "template": pod_template(sid, spec, settings),
        },
    }


def service(sid: str, spec: AnalyticsSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(sid, spec),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(sid),
            "ports": [{"name": "http", "port": spec.port, "targetPort": spec.port, "protocol": "TCP"}],
        },
    }


def ingress(sid: str, spec: AnalyticsSpec, settings: OperatorSettings) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": ingress_path(sid),
                    "pathType": "Prefix",
                    "backend": {"service": {"name": child_name(sid), "port": {"number": spec.port}}},
                }
            ]
        }
    }
    if settings.ingress_host:
        rule["host"] = settings.ingress_host
    metadata = _metadata(sid, spec)
    ingress_spec: dict[str, Any] = {"ingressClassName": settings.ingress_class, "rules": [rule]}
    if settings.ingress_tls_secret:
        tls: dict[str, Any] = {"secretName": settings.ingress_tls_secret}
        if settings.ingress_host:
            tls["hosts"] = [settings.ingress_host]
        ingress_spec["tls"] = [tls]
        metadata["annotations"] = {
            "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
        }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": ingress_spec,
    }


def scenario_job(sid: str, spec: AnalyticsSpec, settings: OperatorSettings, k: int) -> dict[str, Any]:
    """The Job of scenario k of a study."""
    assert spec.study is not None
    scenario = ScenarioRun(k, spec.study.scenarios[k], spec.study.first_run(k))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(sid, k), "labels": labels(sid, spec, scenario)},
        "spec": job_spec(sid, spec, settings, scenario),
    }


def children(sid: str, spec: AnalyticsSpec, settings: OperatorSettings) -> list[dict[str, Any]]:
    """Every child of a resource, the workload first (a study: its scenarios' Jobs, in order)."""
    if spec.study is not None:
        return [scenario_job(sid, spec, settings, k) for k in range(len(spec.study.scenarios))]
    if spec.job_type is JobType.ONDEMAND:
        return [job(sid, spec, settings)]
    if spec.job_type is JobType.SCHEDULED:
        return [cronjob(sid, spec, settings)]
    made = [deployment(sid, spec, settings)]
    if spec.port is not None:
        made += [service(sid, spec), ingress(sid, spec, settings)]
    return made
