"""Which source configures a Flink pod, looked up in the precedence of the package docstring.

The lookups themselves (a GET, a cache) are the caller's; this module only decides, so the webhook,
the controller and the tests share one order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from flinkmem.engine import DeploymentMode
from flinkmem.roles import Role
from flinkmem.sources.flinkconfig import ConfigMapError, configmap_name, from_flink_configmap
from flinkmem.sources.flinkdeployment import SpecError, from_flinkdeployment
from flinkmem.sources.model import FlinkSource, MainContainer, dynamic_properties

__all__ = ["PodSource", "SourceLookup", "cluster_id", "pod_mode", "source_for_pod", "with_pod_options"]


class SourceLookup(Protocol):
    """Reads the objects a pod's configuration can come from; None when there is no such object."""

    async def flinkdeployment(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class PodSource:
    """The outcome of the lookup: a source, or why there is none (`missing`) or it is unusable (`problem`)."""

    source: FlinkSource | None
    deployment: Mapping[str, Any] | None = None
    missing: str | None = None
    problem: str | None = None


def cluster_id(labels: Mapping[str, str]) -> str | None:
    """Flink labels every pod of a cluster `app=<cluster-id>`; the operator uses the FlinkDeployment's name."""
    name = labels.get("app")
    return name if name else None


def pod_mode(labels: Mapping[str, str]) -> DeploymentMode:
    return DeploymentMode.STANDALONE if labels.get("type") == "flink-standalone-kubernetes" else DeploymentMode.NATIVE


def with_pod_options(source: FlinkSource, container: Mapping[str, Any], role: Role) -> FlinkSource:
    """The source as the process in this container sees it: its `-D` options applied after the file."""
    properties = dynamic_properties(container)
    if not properties:
        return source
    return replace(source, config=role.with_dynamic_options(source.config, properties))


def _pod_container(container: Mapping[str, Any]) -> MainContainer:
    env = {
        item["name"]: item["value"]
        for item in container.get("env") or []
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str)
    }
    return MainContainer(env=env)


async def source_for_pod(
    pod: Mapping[str, Any],
    role: Role,
    container: Mapping[str, Any],
    lookup: SourceLookup,
    *,
    container_name: str,
    resource_plural: str = "flinkdeployments",
) -> PodSource:
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    namespace = str(metadata.get("namespace") or "")
    name = cluster_id(labels)
    if name is None or not namespace:
        return PodSource(None, missing="the pod has no app label naming its Flink cluster")
    deployment = await lookup.flinkdeployment(namespace, name)
    if deployment is not None:
        try:
            source = from_flinkdeployment(deployment, container_name)
        except SpecError as exc:
            return PodSource(None, deployment, problem=f"FlinkDeployment {name} is invalid: {exc}")
        return PodSource(with_pod_options(source, container, role), deployment)
    configmap = await lookup.configmap(namespace, configmap_name(name))
    if configmap is None:
        return PodSource(
            None,
            missing=f"no {resource_plural} named {name!r} and no ConfigMap {configmap_name(name)!r} in namespace "
            f"{namespace!r} (from the pod's app label)",
        )
    try:
        source = from_flink_configmap(
            configmap,
            mode=pod_mode(labels),
            pod_annotations=metadata.get("annotations") or {},
            image=container.get("image"),
            role_key=role.key,
            container=_pod_container(container),
        )
    except ConfigMapError as exc:
        return PodSource(None, problem=str(exc))
    return PodSource(with_pod_options(source, container, role), None)
