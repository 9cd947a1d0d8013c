"""A Flink pod as flinkmem reads it, and which source configures it.

`open_pod` is the one way into a pod for the webhook and the controller alike: its role (from Flink's
labels or the opt-in label), its main container (checked field by field, since a pod under review is
only JSON), and the source of its configuration in the precedence of the package docstring: its
FlinkDeployment, except for a TaskManager whose memory the operator's autoscaler tunes, which runs what
Flink's ConfigMap says (`sources.autoscaler`, ADR 0007); else Flink's ConfigMap. The lookups themselves
(a cache, a GET) are the caller's; this module only decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from flinkmem.conventions import (
    APP_LABEL,
    COMPONENT_LABEL,
    FLINK_POD_TYPES,
    OPT_IN_LABEL,
    STANDALONE_TYPE,
    TYPE_LABEL,
)
from flinkmem.engine import DeploymentMode, FlinkVersion, Notice
from flinkmem.sources.autoscaler import memory_tuning_enabled
from flinkmem.sources.flinkconfig import ConfigMapError, FlinkConfigMap, configmap_name, from_flink_configmap
from flinkmem.sources.flinkdeployment import DeploymentSource
from flinkmem.sources.model import RELEVANT_ENV, FlinkSource, MainContainer, dynamic_properties
from flinkmem.sources.names import is_dns1123_label, is_dns1123_subdomain
from flinkmem.sources.roles import ROLES, TASKMANAGER, Role

__all__ = [
    "OpenedPod",
    "PodShapeError",
    "SourceLookup",
    "cluster_id",
    "main_container",
    "open_pod",
    "pod_env",
    "pod_mode",
    "pod_role",
    "with_pod_options",
]


class SourceLookup(Protocol):
    """Finds the objects a pod's configuration can come from, as the sources read them; None when there
    is no such object."""

    async def flinkdeployment(self, namespace: str, name: str) -> DeploymentSource | None: ...

    async def configmap(self, namespace: str, name: str) -> FlinkConfigMap | None: ...


class PodShapeError(ValueError):
    """A field of the pod flinkmem reads has the wrong type; `field` names it."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"{field_path} {problem}")
        self.field = field_path


def pod_role(labels: Mapping[str, str]) -> Role | None:
    """The role of a pod Flink labelled (component + type), or that opted in (component + flinkmem's label)."""
    if labels.get(TYPE_LABEL) in FLINK_POD_TYPES or labels.get(OPT_IN_LABEL) == "true":
        component = labels.get(COMPONENT_LABEL)
        return next((role for role in ROLES if role.key == component), None)
    return None


def cluster_id(labels: Mapping[str, str]) -> str | None:
    """Flink labels every pod of a cluster `app=<cluster-id>`; the operator uses the FlinkDeployment's name."""
    name = labels.get(APP_LABEL)
    return name if name else None


def pod_mode(labels: Mapping[str, str]) -> DeploymentMode:
    return DeploymentMode.STANDALONE if labels.get(TYPE_LABEL) == STANDALONE_TYPE else DeploymentMode.NATIVE


def main_container(pod: Mapping[str, Any], container_name: str) -> tuple[int, Mapping[str, Any]] | None:
    """The index and body of the pod's main container; PodShapeError where the pod is mistyped."""
    spec = pod.get("spec")
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise PodShapeError("spec", "must be an object")
    containers = spec.get("containers")
    if containers is None:
        return None
    if not isinstance(containers, list):
        raise PodShapeError("spec.containers", "must be a list")
    for index, container in enumerate(containers):
        if not isinstance(container, Mapping):
            raise PodShapeError(f"spec.containers[{index}]", "must be an object")
        if container.get("name") == container_name:
            _check_container(container, f"spec.containers[{index}]")
            return index, container
    return None


def _check_container(container: Mapping[str, Any], path: str) -> None:
    resources = container.get("resources")
    if resources is not None:
        if not isinstance(resources, Mapping):
            raise PodShapeError(f"{path}.resources", "must be an object")
        for kind in ("requests", "limits"):
            values = resources.get(kind)
            if values is not None and not isinstance(values, Mapping):
                raise PodShapeError(f"{path}.resources.{kind}", "must be an object")
    env = container.get("env")
    if env is not None:
        if not isinstance(env, list):
            raise PodShapeError(f"{path}.env", "must be a list")
        for index, item in enumerate(env):
            # JSON objects are dicts: the exact type test spares tens of thousands of ABC checks.
            if not (type(item) is dict or isinstance(item, Mapping)) or type(item.get("name")) is not str:
                raise PodShapeError(f"{path}.env[{index}]", "must be an object with a name")
            value = item.get("value")
            if type(value) is str and 4 * (len(value) + len(item["name"])) >= MAX_ARG_STRLEN:
                _check_exec_string(f"{item['name']}={value}", f"{path}.env[{index}] ({item['name'][:64]})")
    for part in ("command", "args"):
        values = container.get(part)
        if values is not None and not isinstance(values, list):
            raise PodShapeError(f"{path}.{part}", "must be a list")
        for index, value in enumerate(values or ()):
            if isinstance(value, str):
                _check_exec_string(value, f"{path}.{part}[{index}]")


# Linux's limit on each argument and environment string execve() takes, its NUL included (MAX_ARG_STRLEN,
# 32 pages, include/uapi/linux/binfmts.h; checked in fs/exec.c copy_strings): a longer one fails the
# container's start with E2BIG. It also bounds what flinkmem reads from a pod's options.
MAX_ARG_STRLEN = 32 * 4096


def _check_exec_string(text: str, where: str) -> None:
    if 4 * len(text) < MAX_ARG_STRLEN:  # UTF-8 takes at most 4 bytes per character
        return
    size = len(text.encode("utf-8", "surrogatepass")) + 1
    if size > MAX_ARG_STRLEN:
        raise PodShapeError(
            where,
            f"is {size:,} bytes: Linux starts no process with an argument or environment variable over "
            f"{MAX_ARG_STRLEN:,} bytes (MAX_ARG_STRLEN), so this container cannot start. Fix: shorten it",
        )


def pod_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's literal values of the variables resolution reads (`RELEVANT_ENV`; valueFrom
    entries are not known at admission). A pod may carry tens of thousands of others."""
    return {
        item["name"]: item["value"]
        for item in container.get("env") or []
        if isinstance(item, Mapping) and item.get("name") in RELEVANT_ENV and isinstance(item.get("value"), str)
    }


def with_pod_options(source: FlinkSource, container: Mapping[str, Any], role: Role) -> FlinkSource:
    """The source as the process in this container sees it: its `-D` options applied after the file."""
    properties = dynamic_properties(container)
    if not properties:
        return source
    return replace(source, config=role.with_dynamic_options(source.config, properties))


async def _autoscaler_tuned(
    lookup: SourceLookup, deployment: FlinkSource, namespace: str, name: str, container: Mapping[str, Any]
) -> FlinkSource | None:
    """Flink's ConfigMap of the cluster, when the operator's autoscaler tunes its TaskManagers' memory: then
    that file, not the FlinkDeployment, is what a TaskManager runs (the difference is the controller's
    `MemoryConfigDiffers`, never "fixed"). None otherwise, or while the ConfigMap is not there: the
    FlinkDeployment's size is then an upper bound, as tuning never goes above it."""
    configmap = await lookup.configmap(namespace, configmap_name(name))
    if configmap is None:
        return None
    try:
        source = from_flink_configmap(
            configmap,
            mode=deployment.mode,
            pod_annotations={},
            image=None,
            role_key=TASKMANAGER.key,
            container=MainContainer(env=pod_env(container)),
            version=deployment.version,
        )
    except ConfigMapError:
        return None  # no file of its line flinkmem can read: the FlinkDeployment, the upper bound, decides
    if not memory_tuning_enabled(source.config):
        return None
    notice = Notice(
        "autoscaler-tuned",
        f"the operator's autoscaler tunes TaskManager memory (job.autoscaler.memory.tuning.enabled): sized from "
        f"Flink's ConfigMap {configmap.name}, which the TaskManager runs, not from FlinkDeployment {name}",
    )
    return replace(source, notices=(*source.notices, notice))


@dataclass(frozen=True)
class OpenedPod:
    """A Flink pod opened for sizing: its role, and either the source of its main container's process
    (with the container's `-D` options applied) or the reason there is none."""

    role: Role
    source: FlinkSource | None = None
    container_index: int | None = None
    deployment: Mapping[str, Any] | None = None  # its FlinkDeployment, where Events about it go
    reason: str | None = None  # why there is no source: nothing found, unusable, or a malformed pod
    version: FlinkVersion | None = None  # the Flink line the pod runs, when known (also without a source)

    @property
    def flink_version(self) -> FlinkVersion | None:
        return self.source.version if self.source is not None else self.version


async def open_pod(
    pod: Mapping[str, Any], lookup: SourceLookup, *, container_name: str, resource_plural: str
) -> OpenedPod | None:
    """The pod's role, main container and source; None when it is not a Flink pod. Lookups may raise."""
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    role = pod_role(labels)
    if role is None:
        return None
    try:
        found = main_container(pod, container_name)
    except PodShapeError as exc:
        return OpenedPod(role, reason=str(exc))
    if found is None:
        return OpenedPod(role, reason=f"the pod has no container named {container_name}")
    index, container = found
    namespace = metadata.get("namespace")
    name = cluster_id(labels)
    if name is None or not namespace:
        return OpenedPod(role, container_index=index, reason="the pod has no app label naming its Flink cluster")
    if not is_dns1123_label(namespace) or not is_dns1123_subdomain(configmap_name(name)):
        reason = "the pod's namespace or app label is not a valid Kubernetes name, so it names no Flink cluster"
        return OpenedPod(role, container_index=index, reason=reason)
    deployment = await lookup.flinkdeployment(namespace, name)
    if deployment is not None:
        if deployment.source is None:
            reason = f"FlinkDeployment {name} is invalid: {deployment.problem}"
            return OpenedPod(role, None, index, deployment.ref, reason, deployment.version)
        source = deployment.source
        if role is TASKMANAGER:
            source = await _autoscaler_tuned(lookup, source, namespace, name, container) or source
        return OpenedPod(role, with_pod_options(source, container, role), index, deployment.ref)
    configmap = await lookup.configmap(namespace, configmap_name(name))
    if configmap is None:
        missing = (
            f"no {resource_plural} named {name!r} and no ConfigMap {configmap_name(name)!r} in namespace "
            f"{namespace!r} (from the pod's app label)"
        )
        return OpenedPod(role, container_index=index, reason=missing)
    try:
        source = from_flink_configmap(
            configmap,
            mode=pod_mode(labels),
            pod_annotations=metadata.get("annotations") or {},
            image=container.get("image"),
            role_key=role.key,
            container=MainContainer(env=pod_env(container)),
        )
    except ConfigMapError as exc:
        return OpenedPod(role, container_index=index, reason=str(exc))
    return OpenedPod(role, with_pod_options(source, container, role), index)
