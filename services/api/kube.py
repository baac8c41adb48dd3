"""The Analytics resources as the API sees them: a small wrapper over kubernetes_asyncio's
CustomObjectsApi that turns transport failures into `KubernetesUnavailable` (→ 503) and refusals into
`KubernetesError`.

Connections: the ApiClient keeps an aiohttp connection pool. After the API server restarts, pooled
connections are dead; the first call on one fails with a connection error and is retried once or twice
on a fresh connection, so the API recovers by itself.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services.shared import crd
from services.shared.names import PART_OF, SERVICE_ID_LABEL

from .errors import KubernetesError, KubernetesUnavailable

log = logging.getLogger(__name__)

PART_OF_LABEL = "app.kubernetes.io/part-of"
# Statuses that say "the server is away or overloaded", not "your request is wrong".
_UNAVAILABLE_STATUSES = {0, 429, 500, 502, 503, 504}
# A dead pooled connection (server restarted) or a refused one: try again on a new connection.
_RETRYABLE = (aiohttp.ClientConnectionError, ConnectionError)
# Largest set of names `AnalyticsClient.list` selects by label (measured: 100 in ~5 ms, 1000 in ~60 ms
# against ~40 ms for listing 1000 resources whole).
MAX_SELECTED = 250


async def open_api_client(kubeconfig: Path | None) -> tuple[client.ApiClient | None, str | None]:
    """An ApiClient from `kubeconfig`, else in-cluster config, else KUBECONFIG / ~/.kube/config.

    Returns (None, why) when there is no configuration at all: the API still starts, answers 503 for
    what needs Kubernetes and reports it on /readyz.
    """
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            path = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
            await config.load_kube_config(config_file=path, client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        log.error("no usable Kubernetes configuration: %s", exc)
        return None, f"no usable Kubernetes configuration ({exc})"
    return client.ApiClient(configuration), None


def _message(exc: ApiException) -> str:
    """The `message` of a Kubernetes Status body, else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.reason or exc.status)


class NamespacedClient:
    """What the API asks of Kubernetes in its namespace; without a configured client (`problem` says
    why) every call is `KubernetesUnavailable`, so the API still serves what needs no cluster."""

    def __init__(
        self,
        api_client: client.ApiClient | None,
        namespace: str,
        timeout_seconds: float = 10.0,
        problem: str | None = None,
    ) -> None:
        self._client = api_client
        self._problem = problem or "Kubernetes is not configured"
        self.namespace = namespace
        self._timeout = timeout_seconds

    def api_client(self) -> client.ApiClient:
        if self._client is None:
            raise KubernetesUnavailable(self._problem)
        return self._client


class AnalyticsClient(NamespacedClient):
    """Create, read, list and delete Analytics resources in one namespace."""

    @property
    def _args(self) -> tuple[str, str, str, str]:
        return (crd.GROUP, crd.VERSION, self.namespace, crd.PLURAL)

    async def _call(
        self,
        what: str,
        method: Callable[..., Awaitable[Any]],
        *args: Any,
        request_timeout: float | aiohttp.ClientTimeout | None = None,
        **kwargs: Any,
    ) -> Any:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(3),
            wait=wait_exponential(multiplier=0.05, max=0.5),
            retry=retry_if_exception_type(_RETRYABLE),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await method(*args, _request_timeout=request_timeout or self._timeout, **kwargs)
        except ApiException as exc:
            if exc.status in _UNAVAILABLE_STATUSES:
                raise KubernetesUnavailable(f"{what}: {exc.status} {_message(exc)}") from exc
            raise KubernetesError(exc.status, _message(exc)) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise KubernetesUnavailable(f"{what}: {type(exc).__name__} {exc}".strip()) from exc
        raise AssertionError("unreachable")  # pragma: no cover - tenacity either returns or raises

    @staticmethod
    def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": crd.API_VERSION,
            "kind": crd.KIND,
            "metadata": {"name": name, "labels": {PART_OF_LABEL: PART_OF, SERVICE_ID_LABEL: name}},
            "spec": spec,
        }

    async def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the resource `name`. A 409 for a resource of the same service (an earlier attempt whose
        answer was lost) counts as created; any other 409 is an error."""
        body = self.manifest(name, spec)
        try:
            return await self._call(
                f"create {crd.KIND} {name}", self._api_method("create"), *self._args, body
            )
        except KubernetesError as exc:
            if exc.status != 409:
                raise
            existing = await self.get(name)
            if existing is not None and existing["metadata"].get("labels", {}).get(SERVICE_ID_LABEL) == name:
                return existing
            raise

    async def get(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._call(f"read {crd.KIND} {name}", self._api_method("get"), *self._args, name)
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    async def read(self, name: str) -> tuple[dict[str, Any] | None, str]:
        """The resource `name` (None if there is none) and the resourceVersion to watch it from."""
        listing = await self._call(
            f"read {crd.KIND} {name}",
            self._api_method("list"),
            *self._args,
            field_selector=f"metadata.name={name}",
        )
        items = listing.get("items") or []
        return (items[0] if items else None), str(listing["metadata"]["resourceVersion"])

    async def watch(
        self, name: str, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events (`{"type", "object"}`) of resource `name` after `resource_version`, until
        the API server ends the watch (after about `timeout_seconds`). An `ERROR` event (the version
        is too old: 410) is passed on; the caller reads again and watches from there."""
        response = await self._call(
            f"watch {crd.KIND} {name}",
            self._api_method("list"),
            *self._args,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            watch=True,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _preload_content=False,
            request_timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self._timeout, sock_read=timeout_seconds + self._timeout
            ),
        )
        try:
            if response.status != 200:
                body = await response.read()
                status = response.status
                message = f"watch {crd.KIND} {name}: {status} {body.decode(errors='replace')[:300]}"
                if status in _UNAVAILABLE_STATUSES:
                    raise KubernetesUnavailable(message)
                raise KubernetesError(status, message)
            buffered = b""
            # Not line by line (aiohttp refuses lines past 128 KiB; an event holds a whole resource).
            async for chunk in response.content.iter_any():
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.release()

    async def list(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Analytics resources by name, in ONE call served from the API server's watch cache.

        With `names`: only the resources labelled with one of those service ids (a set-based label
        selector), so a page costs the same however many services exist; for more than MAX_SELECTED
        names, and without `names`, every resource in the namespace, labelled or not.
        """
        if names is not None and not names:
            return {}
        # Past a few hundred names the selector costs the API server more than listing everything.
        selector = (
            f"{SERVICE_ID_LABEL} in ({','.join(names)})" if names and len(names) <= MAX_SELECTED else None
        )
        listing = await self._call(
            f"list {crd.PLURAL}",
            self._api_method("list"),
            *self._args,
            resource_version="0",
            label_selector=selector,  # None: no selector (the client leaves None parameters out)
        )
        return {item["metadata"]["name"]: item for item in listing.get("items", [])}

    async def delete(self, name: str) -> bool:
        """Delete the resource (its children follow through their owner references); False if absent."""
        try:
            await self._call(
                f"delete {crd.KIND} {name}",
                self._api_method("delete"),
                *self._args,
                name,
                propagation_policy="Background",
            )
        except KubernetesError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def ping(self, request_timeout: float | None = None) -> None:
        """One cheap call that needs the API server, the CRD and the API's RBAC all in place."""
        await self._call(
            f"list {crd.PLURAL}",
            self._api_method("list"),
            *self._args,
            limit=1,
            request_timeout=request_timeout,
        )

    def _api_method(self, verb: str) -> Callable[..., Awaitable[Any]]:
        api = client.CustomObjectsApi(self.api_client())
        methods: dict[str, Callable[..., Awaitable[Any]]] = {
            "create": api.create_namespaced_custom_object,
            "get": api.get_namespaced_custom_object,
            "list": api.list_namespaced_custom_object,
            "delete": api.delete_namespaced_custom_object,
        }
        return methods[verb]
