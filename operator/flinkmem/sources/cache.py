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

Memory is bounded by what flinkmem reads, not by what tenants store: an object is read when it
arrives (a ConfigMap's file parsed once) and kept as its source, trimmed to the options resolution
reads (`model.RELEVANT_PREFIXES`), or as the reason it is none. A source larger than
`MAX_SOURCE_BYTES` is kept as that reason instead, so every cached object costs a few KiB at most.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from flinkmem.conventions import CONFIGMAP_PREFIX, DEFAULT_CONTAINER
from flinkmem.sources.flinkconfig import FlinkConfigMap, file_digest, read_configmap
from flinkmem.sources.flinkdeployment import DeploymentSource, deployment_source
from flinkmem.sources.model import FlinkSource

__all__ = ["MAX_SOURCE_BYTES", "Reader", "SourceCache"]

# The options and environment a cached source may hold, in characters of keys and values.
MAX_SOURCE_BYTES = 64 * 1024


class Reader(Protocol):
    """The API reads behind the cache (a GET each)."""

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...


def _size(config: Mapping[str, object], env: Mapping[str, str] | None = None) -> int:
    return sum(len(k) + len(str(v)) for k, v in config.items()) + sum(len(k) + len(v) for k, v in (env or {}).items())


def _too_large(what: str) -> str:
    return f"{what} holds more than {MAX_SOURCE_BYTES // 1024} KiB of memory options; flinkmem does not size from it"


def _bounded_deployment(known: DeploymentSource) -> DeploymentSource:
    source: FlinkSource | None = known.source
    if source is not None:
        env = {f"{role}:{k}": v for role, c in source.containers.items() for k, v in c.env.items()}
        if _size(source.config, env) > MAX_SOURCE_BYTES:
            name = known.ref.get("metadata", {}).get("name")
            return replace(known, source=None, problem=_too_large(f"FlinkDeployment {name}"))
    return known


def _bounded_configmap(known: FlinkConfigMap) -> FlinkConfigMap:
    if known.problem is None and sum(_size(file.config) for file in known.files) > MAX_SOURCE_BYTES:
        return replace(known, files=(), problem=_too_large(f"ConfigMap {known.name}"))
    return known


class SourceCache:
    """`sources.pods.SourceLookup` over watch-fed sources, falling back to `reader` where they cannot answer."""

    def __init__(self, reader: Reader, container_name: str = DEFAULT_CONTAINER) -> None:
        self.reader = reader
        self.container_name = container_name
        self.deployments: dict[tuple[str, str], DeploymentSource] = {}
        self.configmaps: dict[tuple[str, str], FlinkConfigMap] = {}  # keyed by cluster id

    def _deployment(self, obj: Mapping[str, Any]) -> DeploymentSource:
        return _bounded_deployment(deployment_source(obj, self.container_name))

    def remember_deployment(self, obj: Mapping[str, Any]) -> tuple[DeploymentSource | None, DeploymentSource]:
        """Stores a watched FlinkDeployment; returns what it replaces (None at first sight) and what it keeps."""
        key = _key(obj)
        previous = self.deployments.get(key)
        current = self.deployments[key] = self._deployment(obj)
        return previous, current

    def remember_configmap(self, obj: Mapping[str, Any]) -> bool:
        """Stores a watched Flink ConfigMap, its file read once; False when the file is as it was (an update
        of its labels, say), which is then not read again."""
        key = _key(obj, CONFIGMAP_PREFIX)
        previous = self.configmaps.get(key)
        data = obj.get("data")
        if (
            previous is not None
            and previous.digest
            and isinstance(data, Mapping)
            and previous.digest == file_digest(data)
        ):
            return False
        self.configmaps[key] = _bounded_configmap(read_configmap(obj))
        return True

    def forget_deployment(self, namespace: str, name: str) -> None:
        self.deployments.pop((namespace, name), None)

    def forget_configmap(self, namespace: str, cluster_id: str) -> None:
        self.configmaps.pop((namespace, cluster_id), None)

    def cached_deployment(self, namespace: str, name: str) -> DeploymentSource | None:
        return self.deployments.get((namespace, name))

    def cached_configmap(self, namespace: str, cluster_id: str) -> FlinkConfigMap | None:
        return self.configmaps.get((namespace, cluster_id))

    async def flinkdeployment(self, namespace: str, name: str) -> DeploymentSource | None:
        cached = self.deployments.get((namespace, name))
        if cached is not None and cached.rolled_out:
            return cached
        obj = await self.reader.get_deployment(namespace, name)
        return None if obj is None else self._deployment(obj)

    async def configmap(self, namespace: str, name: str) -> FlinkConfigMap | None:
        cached = self.configmaps.get((namespace, name.removeprefix(CONFIGMAP_PREFIX)))
        if cached is not None:
            return cached
        obj = await self.reader.get_configmap(namespace, name)
        return None if obj is None else _bounded_configmap(read_configmap(obj))


def _key(obj: Mapping[str, Any], prefix: str = "") -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "").removeprefix(prefix)
