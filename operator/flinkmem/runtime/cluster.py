"""The few Kubernetes API calls flinkmem makes itself (the rest goes through kopf).

Kept in one place so the RBAC it needs is easy to read off: get FlinkDeployments and ConfigMaps, list
pods, create Events and pod evictions. Calls are asynchronous over one pooled aiohttp session, since
webhook handlers run on kopf's event loop and a pod admission must not wait for a free thread.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from flinkmem.conventions import EVENT_MESSAGE_LIMIT
from flinkmem.runtime.credentials import Credentials
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.settings import Settings

__all__ = ["Cluster", "OwnerLookupError"]

logger = logging.getLogger("flinkmem.cluster")

# How long an eviction is retried while the API server cannot take it (see Cluster.evict_pod).
EVICTION_RETRY_SECONDS = 300.0


class OwnerLookupError(RuntimeError):
    """An object a pod's memory depends on (FlinkDeployment, ConfigMap, pods) could not be read.

    For example a timeout, an RBAC refusal or the API server being down.
    """


def _seg(text: str) -> str:
    """One path segment, escaped: a name can never reach another path (`/`, `?`, `..`)."""
    segment = urllib.parse.quote(str(text), safe="")
    return segment if segment not in (".", "..") else urllib.parse.quote(segment.replace(".", "%2E"), safe="%")


@dataclass
class Cluster:
    """Everything the handlers need besides the request itself."""

    settings: Settings
    metrics: Metrics
    credentials: Credentials
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # The CA and client certificate are read once; the bearer token with every request (a
            # token file is re-read after a minute, and at once after a 401: the kubelet rotates it).
            ssl_context = self.credentials.connection_info().as_ssl_context()
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context, limit=64))
        return self._session

    async def _request(
        self, method: str, path: str, body: Any = None, timeout: float | None = None, *, decode: bool = True
    ) -> tuple[int, Any]:
        """The status and the decoded body; with `decode=False`, the body's bytes (callers that need it
        only to report a failure: decoding an Event the API server echoes back costs more than posting it)."""
        self._session = self._ensure_session()
        url = f"{self.credentials.server}{path}"
        limit = aiohttp.ClientTimeout(total=self.settings.owner_lookup_timeout if timeout is None else timeout)
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        status, data = await self._once(self._session, method, url, payload, limit)
        if status == 401 and self.credentials.token_file is not None:
            # The token expired: the file holds its successor by then (the kubelet rotates it early).
            self.credentials.bearer_token(fresh=True)
            status, data = await self._once(self._session, method, url, payload, limit)
        return status, (json.loads(data) if data else None) if decode else data

    async def _once(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        payload: bytes | None,
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[int, bytes]:
        headers = self.credentials.authorization()
        if payload is not None:
            headers = {**headers, "Content-Type": "application/json"}
        async with session.request(method, url, data=payload, headers=headers, timeout=timeout) as r:
            return r.status, await r.read()

    async def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        """Any call (the development set-up's): the HTTP status and the decoded body."""
        return await self._request(method, path, body, timeout)

    async def lines(self, path: str, timeout: float) -> AsyncIterator[bytes]:
        """The lines of a streamed GET (a watch), each as it arrives; raises on a status other than 200."""
        session = self._ensure_session()
        limit = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout)
        headers = self.credentials.authorization()
        async with session.get(f"{self.credentials.server}{path}", headers=headers, timeout=limit) as r:
            if r.status == 401 and self.credentials.token_file is not None:
                self.credentials.bearer_token(fresh=True)  # the next attempt uses the rotated token
            if r.status != 200:
                raise RuntimeError(f"GET {path.split('?')[0]}: HTTP {r.status}")
            pending = b""
            async for chunk in r.content.iter_any():
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        yield line

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        resource = self.settings.resource
        path = f"/apis/{resource.group}/{resource.version}/namespaces/{_seg(namespace)}/{resource.plural}/{_seg(name)}"
        return await self._get_object(path, f"{resource.plural} {namespace}/{name}")

    # The two reads of sources.pods.SourceLookup.
    async def flinkdeployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return await self.get_deployment(namespace, name)

    async def configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return await self.get_configmap(namespace, name)

    async def _get_object(self, path: str, what: str) -> Mapping[str, Any] | None:
        try:
            # resourceVersion=0 is answered from the API server's watch cache, without a read from etcd.
            # An object created a moment ago may not be there yet, so a miss asks etcd before giving up.
            status, data = await self._request("GET", f"{path}?resourceVersion=0")
            if status == 404:
                status, data = await self._request("GET", path)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise OwnerLookupError(f"reading {what} failed: {exc!r}") from None
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict):
            raise OwnerLookupError(f"reading {what} failed: HTTP {status}")
        return data

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return await self._get_object(
            f"/api/v1/namespaces/{_seg(namespace)}/configmaps/{_seg(name)}", f"ConfigMap {namespace}/{name}"
        )

    async def list_pods(self, namespace: str, label_selector: str) -> list[Mapping[str, Any]]:
        """Pods matching a label selector, from the watch cache (the controller's view is not fresher)."""
        query = urllib.parse.urlencode({"labelSelector": label_selector, "resourceVersion": "0"})
        try:
            status, data = await self._request("GET", f"/api/v1/namespaces/{_seg(namespace)}/pods?{query}")
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise OwnerLookupError(f"listing pods {label_selector} in {namespace} failed: {exc!r}") from None
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise OwnerLookupError(f"listing pods {label_selector} in {namespace} failed: HTTP {status}")
        # List items carry no kind: give them back what a watch event has, for Events about them.
        return [{"apiVersion": "v1", "kind": "Pod", **item} for item in data["items"] if isinstance(item, dict)]

    async def post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Posts a core/v1 Event about `target` (used where kopf's own poster is not available)."""
        meta = target.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'flinkmem')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": target.get("apiVersion"),
                "kind": target.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:EVENT_MESSAGE_LIMIT],
            "type": type_,
            "source": {"component": "flinkmem"},
            "reportingComponent": "flinkmem",
            "reportingInstance": "flinkmem",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            status, data = await self._request(
                "POST", f"/api/v1/namespaces/{_seg(namespace)}/events", event, decode=False
            )
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            logger.warning("posting the %s event failed: %r", reason, exc)
            return
        if status != 201:
            logger.warning(
                "posting the %s event failed: HTTP %s %s", reason, status, data[:500].decode("utf-8", "replace")
            )

    async def evict_pod(self, namespace: str, name: str) -> bool:
        """Evicts the pod; True once the API server accepted it.

        The drift check asks only once per pod, so what can pass is retried for a while: the API
        server unreachable or restarting (a pod admitted unsized during its shutdown is evicted once
        it is back), a 5xx, or 429 (a PodDisruptionBudget or throttling says not now). A 404 (the
        pod is gone) or any other refusal ends it.
        """
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        path = f"/api/v1/namespaces/{_seg(namespace)}/pods/{_seg(name)}/eviction"
        deadline = time.monotonic() + EVICTION_RETRY_SECONDS
        delay = 1.0
        while True:
            try:
                status, data = await self._request("POST", path, eviction)
                failure = f"HTTP {status} {data}"
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                status, failure = 0, repr(exc)
            if status in (200, 201):
                return True
            retry = status == 0 or status == 429 or status >= 500
            if not retry or time.monotonic() + delay > deadline:
                logger.warning("evicting pod %s/%s failed: %s", namespace, name, failure)
                return False
            logger.info("evicting pod %s/%s failed, retrying in %.0f s: %s", namespace, name, delay, failure)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)
