"""A GET on the Kubernetes API whose body the caller reads as it arrives (a pod's log), shared by the
operator (storing run logs) and the API (streaming them): kubernetes_asyncio's generated
`read_namespaced_pod_log` reads the whole body before it returns."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
from kubernetes_asyncio import client


def pod_log_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/log"


async def open_stream(
    api: client.ApiClient, path: str, query: list[tuple[str, str]], request_timeout: aiohttp.ClientTimeout
) -> aiohttp.ClientResponse:
    """The raw answer to GET `path`, any status; the caller reads (or releases) its body."""
    response: aiohttp.ClientResponse = await api.call_api(
        path,
        "GET",
        query_params=query,
        header_params={"Accept": "*/*"},
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
        _preload_content=False,
        _request_timeout=request_timeout,
    )
    return response
