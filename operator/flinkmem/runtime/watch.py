"""A plain list-then-watch of one resource, filtered in the API server: what the webhook process's source
cache needs, without kopf's per-event machinery.

kopf gives every event a body view, a patch, a memo, causes and handler dispatch (about half a millisecond
of CPU each, the benchmarks found); the source cache only stores the object. Here each event line is
decoded and handed to a callback, and nothing else happens: the list at start (and after a `410 Gone`)
gives every object as ADDED and the ones gone meanwhile as DELETED; bookmarks keep the resume point
current; a dropped connection resumes from the last version seen, an error retries after a back-off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from flinkmem.conventions import CONFIGMAP_PREFIX
from flinkmem.runtime.kopfsetup import CONFIGMAP_SELECTOR
from flinkmem.runtime.settings import ResourceRef
from flinkmem.sources.cache import SourceCache

__all__ = ["Handler", "ObjectWatch", "Stream", "cache_feeds", "collection_paths"]

logger = logging.getLogger("flinkmem.watch")

# How long one watch request lasts before the API server ends it (it is then resumed at once).
WATCH_SECONDS = 300
LIST_PAGE = 100
BACKOFFS = (1.0, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0)

Handler = Callable[[str, Mapping[str, Any]], None]


class Stream(Protocol):
    """The API calls a watch makes (`runtime.cluster.Cluster`)."""

    async def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]: ...

    def lines(self, path: str, timeout: float) -> AsyncIterator[bytes]: ...


class Gone(Exception):
    """The resume point is older than the API server keeps (410): list again."""


def collection_paths(base: str, namespaces: tuple[str, ...]) -> list[str]:
    """The collection paths to watch: `base` is `/apis/<group>/<version>` or `/api/v1` plus `/<plural>`
    after a `{ns}` placeholder, as in `/apis/g/v/{ns}<plural>`; cluster-wide without namespaces."""
    if not namespaces:
        return [base.replace("{ns}", "")]
    return [base.replace("{ns}", f"namespaces/{urllib.parse.quote(ns, safe='')}/") for ns in namespaces]


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class ObjectWatch:
    """Keeps calling `handler(event_type, object)` for every object of one collection path."""

    def __init__(self, api: Stream, path: str, handler: Handler, label_selector: str | None = None) -> None:
        self.api = api
        self.path = path
        self.handler = handler
        self.label_selector = label_selector
        self.known: dict[tuple[str, str], Mapping[str, Any]] = {}  # what the handler was last given, trimmed
        self.version = ""
        self.listed = asyncio.Event()  # set once the first list has been handed over

    def _query(self, **extra: str) -> str:
        params = dict(extra)
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        return f"{self.path}?{urllib.parse.urlencode(params)}"

    def _deliver(self, event_type: str, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        if event_type == "DELETED":
            self.known.pop(key, None)
        else:
            meta = obj.get("metadata") or {}
            self.known[key] = {"metadata": {"namespace": key[0], "name": key[1], "uid": meta.get("uid")}}
        try:
            self.handler(event_type, obj)
        except Exception:  # one bad object must not stop the watch
            logger.exception("handling %s of %s/%s failed", event_type, *key)

    async def _list(self) -> None:
        """Every object, in pages (a tenant's large ConfigMaps are never all in memory at once)."""
        seen: set[tuple[str, str]] = set()
        token = ""
        while True:
            extra = {"limit": str(LIST_PAGE)} | ({"continue": token} if token else {})
            status, data = await self.api.request("GET", self._query(**extra))
            if status != 200 or not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise RuntimeError(f"listing {self.path} failed: HTTP {status}")
            for item in data["items"]:
                if isinstance(item, dict):
                    seen.add(_key(item))
                    self._deliver("ADDED", item)
            meta = data.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                break
        for key in [k for k in self.known if k not in seen]:
            self._deliver("DELETED", self.known[key])  # gone while nobody was watching
        self.version = str(meta.get("resourceVersion") or "")
        self.listed.set()

    async def _watch(self) -> None:
        query = self._query(
            watch="1",
            resourceVersion=self.version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(WATCH_SECONDS),
        )
        async for line in self.api.lines(query, WATCH_SECONDS + 30):
            event = json.loads(line)
            event_type, obj = event.get("type"), event.get("object")
            if not isinstance(obj, dict):
                continue
            if event_type == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise RuntimeError(f"watching {self.path}: {obj.get('message')}")
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if event_type in ("ADDED", "MODIFIED", "DELETED"):
                self._deliver(event_type, obj)
            if version:
                self.version = str(version)

    async def run(self) -> None:
        """Until cancelled."""
        failures = 0
        while True:
            try:
                if not self.version:
                    await self._list()
                    failures = 0
                await self._watch()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Gone:
                self.version = ""
            except Exception as exc:
                delay = BACKOFFS[min(failures, len(BACKOFFS) - 1)]
                failures += 1
                logger.warning("watching %s failed, again in %.0f s: %r", self.path, delay, exc)
                # A dropped watch resumes where it was; twice in a row, it lists afresh.
                self.version = "" if failures > 1 else self.version
                await asyncio.sleep(delay)


def cache_feeds(
    api: Stream, resource: ResourceRef, namespaces: tuple[str, ...], cache: SourceCache
) -> list[ObjectWatch]:
    """The watches that keep `cache` current in the webhook process: FlinkDeployments, and Flink's ConfigMaps
    (filtered in the API server by Flink's `type` label, here by their name)."""

    def deployment(event_type: str, obj: Mapping[str, Any]) -> None:
        if event_type == "DELETED":
            cache.forget_deployment(*_key(obj))
        else:
            cache.remember_deployment(obj)

    def configmap(event_type: str, obj: Mapping[str, Any]) -> None:
        namespace, name = _key(obj)
        if not name.startswith(CONFIGMAP_PREFIX):
            return
        if event_type == "DELETED":
            cache.forget_configmap(namespace, name.removeprefix(CONFIGMAP_PREFIX))
        else:
            cache.remember_configmap(obj)

    group = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    watches = [
        ObjectWatch(api, path, deployment) for path in collection_paths(f"{group}/{{ns}}{resource.plural}", namespaces)
    ]
    watches += [
        ObjectWatch(api, path, configmap, CONFIGMAP_SELECTOR)
        for path in collection_paths("/api/v1/{ns}configmaps", namespaces)
    ]
    return watches
