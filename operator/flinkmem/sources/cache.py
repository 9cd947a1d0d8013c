"""FlinkDeployments and Flink's ConfigMaps as the watches last delivered them: the sources of pods.

Each process that sizes or checks pods (every webhook replica, and the reconciling controller) keeps
this cache, fed by its own watches, so that a pod costs no API read. Freshness rule:

- a cached FlinkDeployment answers unless its `metadata.generation` is ahead of its
  `status.observedGeneration` (the Apache operator has not finished rolling out a spec change: the
  only time pods of either spec can appear); then it is read from the API server;
- an object the watch has not delivered is read from the API server (it may have been created a
  moment ago);
- what remains is a change made less than one watch delivery before its pod (milliseconds): the
  controller checks every pod of a cluster again when its FlinkDeployment or ConfigMap changes, and
  reports (with `--evict-drifted`, replaces) a pod sized from the older spec.

Only what resolution reads is kept (metadata, spec, data, observedGeneration), not the Apache
operator's status with its copies of past specs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from flinkmem.conventions import CONFIGMAP_PREFIX

__all__ = ["Reader", "SourceCache"]

_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "labels", "annotations")


class Reader(Protocol):
    """The API reads behind the cache (a GET each)."""

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...


def _trimmed(obj: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    out: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind", *keys) if k in obj}
    out["metadata"] = {k: metadata[k] for k in _METADATA if k in metadata}
    status = obj.get("status")
    if isinstance(status, Mapping) and "observedGeneration" in status:
        out["status"] = {"observedGeneration": status["observedGeneration"]}
    return out


def _key(obj: Mapping[str, Any], prefix: str = "") -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "").removeprefix(prefix)


def _rolled_out(obj: Mapping[str, Any]) -> bool:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if not isinstance(generation, int) or not isinstance(observed, int):
        return True  # no operator bookkeeping (flinkmem's bundled CRD): the spec is what pods come from
    return observed >= generation


class SourceCache:
    """`sources.pods.SourceLookup` over watch-fed copies, falling back to `reader` where they cannot answer."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}  # keyed by cluster id

    def remember_deployment(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Stores a watched FlinkDeployment; returns the copy it replaces, if any."""
        return self._store(self.deployments, _key(obj), obj, "spec")

    def remember_configmap(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return self._store(self.configmaps, _key(obj, CONFIGMAP_PREFIX), obj, "data")

    @staticmethod
    def _store(
        into: dict[tuple[str, str], dict[str, Any]], key: tuple[str, str], obj: Mapping[str, Any], content: str
    ) -> Mapping[str, Any] | None:
        previous = into.get(key)
        into[key] = _trimmed(obj, content)
        return previous

    def forget_deployment(self, namespace: str, name: str) -> None:
        self.deployments.pop((namespace, name), None)

    def forget_configmap(self, namespace: str, cluster_id: str) -> None:
        self.configmaps.pop((namespace, cluster_id), None)

    def cached_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.deployments.get((namespace, name))

    def cached_configmap(self, namespace: str, cluster_id: str) -> Mapping[str, Any] | None:
        return self.configmaps.get((namespace, cluster_id))

    async def flinkdeployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        cached = self.deployments.get((namespace, name))
        if cached is not None and _rolled_out(cached):
            return cached
        return await self.reader.get_deployment(namespace, name)

    async def configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        cached = self.configmaps.get((namespace, name.removeprefix(CONFIGMAP_PREFIX)))
        if cached is not None:
            return cached
        return await self.reader.get_configmap(namespace, name)
