"""Removing a DT solution from the stack deletes its namespace, and with it every service that runs there.
`pulumi up` refuses that while the namespace holds Analytics resources (services), unless the stack names
the solution in `solutionsForceRemoval`.

Two Pulumi resource hooks do it, both registered by every run of the program: the engine calls a hook by
its name, also for a resource the program no longer declares (a removed solution's Namespace).
- `before_update` of the operator's and the API's Deployments: a solution that leaves their
  OPERATOR_SOLUTIONS / API_SOLUTIONS is checked before either stops serving it (updates run before
  deletions), so a refusal leaves everything as it was.
- `before_delete` of each solution's Namespace: checked again just before the namespace goes. When the
  removal is forced, the Analytics resources' finalizers are lifted first: the operator no longer serves
  that namespace, and its finalizers would hold the namespace in Terminating for ever.
Both also run in previews (`on_dry_run`), so `pulumi preview` shows the refusal. A hook's error is the
engine's error: the message reaches the user as it is.

The hooks read the cluster as the kubernetes provider does: config `kubernetes:kubeconfig` (a path or the
file's contents) and `kubernetes:context`, else KUBECONFIG or ~/.kube/config. Because a solution's
Namespace has a delete hook, `pulumi destroy` of a stack with solutions needs `--run-program`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pulumi
import yaml
from kubernetes_asyncio import client, config

from services.shared import crd
from services.shared.solutions import SOLUTION_LABEL

NAMESPACE_HOOK = "dtpoc-solution-namespace-removal"
DEPLOYMENT_HOOK = "dtpoc-solution-removal"
# The env variables of the orchestrator's Deployments that list the solutions they serve (orchestrator.py).
SOLUTIONS_ENV = ("OPERATOR_SOLUTIONS", "API_SOLUTIONS")
REQUEST_TIMEOUT = 30
RETRIES = 10
LISTED = 20  # services named in the message


class SolutionStillRunning(RuntimeError):
    pass


def force_hint(name: str) -> str:
    return f"pulumi config set --path 'solutionsForceRemoval[0]' {name}"


@dataclass(frozen=True)
class KubeAccess:
    """The cluster as the kubernetes provider reaches it."""

    kubeconfig: str | None = None  # a path, or a kubeconfig's contents
    context: str | None = None

    @classmethod
    def of_provider(cls) -> KubeAccess:
        provider = pulumi.Config("kubernetes")
        return cls(provider.get("kubeconfig") or None, provider.get("context") or None)

    @asynccontextmanager
    async def api(self) -> AsyncIterator[client.ApiClient]:
        configuration = client.Configuration()
        if self.kubeconfig and "\n" in self.kubeconfig.strip():
            await config.load_kube_config_from_dict(
                yaml.safe_load(self.kubeconfig), context=self.context, client_configuration=configuration
            )
        else:
            await config.load_kube_config(
                config_file=self.kubeconfig or os.environ.get("KUBECONFIG") or None,
                context=self.context,
                client_configuration=configuration,
                persist_config=False,
            )
        async with client.ApiClient(configuration) as api:
            yield api


def listed_solutions(inputs: Mapping[str, Any] | None) -> dict[str, str] | None:
    """name -> namespace of the solutions a Deployment's inputs list in OPERATOR_SOLUTIONS / API_SOLUTIONS;
    None when they cannot be read (a value still unknown in a preview)."""
    try:
        containers = (inputs or {})["spec"]["template"]["spec"]["containers"]
    except (KeyError, TypeError):
        return None
    listed: dict[str, str] = {}
    for container in containers:
        for variable in container.get("env") or []:
            if variable.get("name") not in SOLUTIONS_ENV:
                continue
            value = variable.get("value")
            if not isinstance(value, str):
                return None
            listed |= {entry["name"]: entry["namespace"] for entry in json.loads(value)}
    return listed


class RemovalCheck:
    """What the hooks do. `forced`: the solutions whose removal goes ahead although services run there."""

    def __init__(self, forced: Iterable[str], kube: KubeAccess) -> None:
        self.forced = frozenset(forced)
        self.kube = kube

    async def before_deployment_update(self, args: pulumi.ResourceHookArgs) -> None:
        before = listed_solutions(args.old_inputs)
        after = listed_solutions(args.new_inputs)
        if before is None or after is None:
            return
        for name in sorted(before.keys() - after.keys()):
            await self.check(name, before[name], lift_finalizers=False)

    async def before_namespace_delete(self, args: pulumi.ResourceHookArgs) -> None:
        metadata = (args.old_inputs or {}).get("metadata") or {}
        name = (metadata.get("labels") or {}).get(SOLUTION_LABEL)
        namespace = metadata.get("name")
        if isinstance(name, str) and isinstance(namespace, str):
            await self.check(name, namespace, lift_finalizers=True)

    async def check(self, name: str, namespace: str, lift_finalizers: bool) -> None:
        """Raises SolutionStillRunning while `namespace` holds Analytics resources, unless forced."""
        async with self.kube.api() as api:
            objects = client.CustomObjectsApi(api)
            services = await analytics_in(objects, namespace)
            if not services:
                return
            if name not in self.forced:
                shown = ", ".join(services[:LISTED]) + (", ..." if len(services) > LISTED else "")
                raise SolutionStillRunning(
                    f"solution {name!r} cannot be removed: {len(services)} service(s) still run in its "
                    f"namespace {namespace} ({shown}). Terminate them first (DELETE "
                    f"/api/orchestrator/v1alpha1/solutions/{name}/service/<id>/terminate), put the "
                    f"solution back in `solutions`, or force the removal (its services stop; their "
                    f"records and files stay in the databases): {force_hint(name)}"
                )
            pulumi.log.warn(
                f"solution {name!r}: removal forced with {len(services)} service(s) in {namespace}"
            )
            if lift_finalizers:
                for service in services:
                    await lift_finalizers_of(objects, namespace, service)


class SolutionRemovalGuard:
    """The two named hooks around one RemovalCheck (made inside the Pulumi program: a hook registers
    itself with the engine)."""

    def __init__(self, forced: Iterable[str], kube: KubeAccess) -> None:
        self.check = RemovalCheck(forced, kube)
        options = pulumi.ResourceHookOptions(on_dry_run=True)
        self.namespace_hook = pulumi.ResourceHook(NAMESPACE_HOOK, self.check.before_namespace_delete, options)
        self.deployment_hook = pulumi.ResourceHook(
            DEPLOYMENT_HOOK, self.check.before_deployment_update, options
        )

    @property
    def namespace_hooks(self) -> pulumi.ResourceHookBinding:
        return pulumi.ResourceHookBinding(before_delete=[self.namespace_hook])

    @property
    def deployment_hooks(self) -> pulumi.ResourceHookBinding:
        return pulumi.ResourceHookBinding(before_update=[self.deployment_hook])


async def analytics_in(objects: client.CustomObjectsApi, namespace: str) -> list[str]:
    """Names of the Analytics resources in `namespace` (none when the namespace or the CRD is gone)."""
    try:
        listing = await _retrying(
            lambda: objects.list_namespaced_custom_object(
                crd.GROUP, crd.VERSION, namespace, crd.PLURAL, _request_timeout=REQUEST_TIMEOUT
            )
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return sorted(item["metadata"]["name"] for item in listing.get("items") or [])


async def lift_finalizers_of(objects: client.CustomObjectsApi, namespace: str, name: str) -> None:
    try:
        await _retrying(
            lambda: objects.patch_namespaced_custom_object(
                crd.GROUP,
                crd.VERSION,
                namespace,
                crd.PLURAL,
                name,
                # JSON patch ("add" replaces a present member): custom objects take no strategic merge patch.
                [{"op": "add", "path": "/metadata/finalizers", "value": []}],
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
    except client.ApiException as exc:
        if exc.status != 404:
            raise


async def _retrying(call: Callable[[], Awaitable[Any]]) -> Any:
    """`call`, again after the apiserver's Retry-After while it answers 429 (busy, or a CRD's storage still
    initializing), at most RETRIES times."""
    for attempt in range(RETRIES + 1):
        try:
            return await call()
        except client.ApiException as exc:
            if exc.status != 429 or attempt == RETRIES:
                raise
            retry_after = str(exc.headers.get("Retry-After", "1")) if exc.headers else "1"
            await asyncio.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, 10.0))
    raise AssertionError("unreachable")
