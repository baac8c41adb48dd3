"""A thin Kubernetes client for the operator's own calls, on kubernetes_asyncio's ApiClient.

kopf brings the watches; the operator itself creates children, reads them during sweeps, and writes
the Analytics status. Objects go in and out as plain dicts (the shape of the manifests that
`workloads` builds), so one small set of calls serves every kind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from services.shared import crd
from services.shared.kube_stream import open_stream

MERGE_PATCH = "application/merge-patch+json"

# Kinds the operator makes or reads: (API group path prefix, plural).
_KINDS: dict[str, tuple[str, str]] = {
    "Job": ("/apis/batch/v1", "jobs"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
    "Pod": ("/api/v1", "pods"),
    "Event": ("/api/v1", "events"),
    crd.KIND: (f"/apis/{crd.API_VERSION}", crd.PLURAL),
}


def collection_path(kind: str, namespace: str) -> str:
    prefix, plural = _KINDS[kind]
    return f"{prefix}/namespaces/{namespace}/{plural}"


def object_path(kind: str, namespace: str, name: str, subresource: str | None = None) -> str:
    path = f"{collection_path(kind, namespace)}/{name}"
    return f"{path}/{subresource}" if subresource else path


async def load_configuration() -> client.Configuration:
    """In a pod: the ServiceAccount; elsewhere: $KUBECONFIG or ~/.kube/config (like `kopf run`)."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        await config.load_kube_config(client_configuration=configuration, persist_config=False)
    return configuration


class Kube:
    """Plain-dict REST calls; 404 reads as None, 409 on create as "already there"."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    @classmethod
    async def connect(cls) -> Kube:
        return cls(client.ApiClient(await load_configuration()))

    async def close(self) -> None:
        await self.api.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        return await self.api.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            response_types_map={200: "object", 201: "object", 202: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, query: list[tuple[str, str]], timeout_seconds: float
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A GET whose body is read by the caller as it arrives (a pod's log); ApiException when the
        answer is not a success, with the Status in its body like any other call's."""
        response = await open_stream(self.api, path, query, aiohttp.ClientTimeout(total=timeout_seconds))
        try:
            if not 200 <= response.status < 300:
                failure = ApiException(status=response.status, reason=response.reason)
                # As text, like the body of every other call's ApiException (the stubs say bytes).
                failure.body = (await response.read()).decode(errors="replace")  # type: ignore[assignment]
                raise failure
            yield response
        finally:
            response.release()

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            return await self._call("GET", path)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    async def list(
        self, path: str, label_selector: str | None = None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        query += [("fieldSelector", field_selector)] if field_selector else []
        return (await self._call("GET", path, query=query)).get("items", [])

    async def create(self, manifest: dict[str, Any]) -> bool:
        """Create `manifest` in its namespace; True if made now, False if it already existed."""
        path = collection_path(manifest["kind"], manifest["metadata"]["namespace"])
        try:
            await self._call("POST", path, body=manifest)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self._call("PATCH", path, body=body, content_type=MERGE_PATCH)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    async def delete(self, path: str, propagation: str = "Background") -> bool:
        try:
            await self._call("DELETE", path, body={"propagationPolicy": propagation})
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True
