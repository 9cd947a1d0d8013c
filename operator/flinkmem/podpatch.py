"""Sizing a Flink pod: the change its main container needs to match the derived memory.

Only the main container is touched. Its memory request and limit are raised to at least what
`sizing.container_memory` derives (never lowered), and the role's Java-options variable
(`FLINK_ENV_JAVA_OPTS_JM`, `FLINK_ENV_JAVA_OPTS_TM`) is set to the user's options for that role with
every memory flag replaced by the derived ones. Flink's start scripts read that variable instead of
`env.java.(default-)opts.<role>` and append it after the flags they compute, so the derived flags are
the ones the JVM keeps. Planning the same pod twice yields no further change.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from flinkmem.jvmopts import role_opts, with_memory_flags
from flinkmem.quantity import QuantityError, quantity_bytes
from flinkmem.roles import FLINK_POD_TYPES, OPT_IN_LABEL, ROLES, Role
from flinkmem.settings import ANNOTATION_PREFIX
from flinkmem.sources.model import FlinkSource
from flinkmem.validation import RoleValidation, Validation

__all__ = [
    "JVM_FLAGS_ANNOTATION",
    "RESOLVED_ANNOTATION",
    "PodPlan",
    "PodShapeError",
    "apply_plan",
    "main_container",
    "memory_annotation",
    "plan_pod",
    "pod_role",
    "role_annotation",
]

RESOLVED_ANNOTATION = f"{ANNOTATION_PREFIX}/resolved-memory"
JVM_FLAGS_ANNOTATION = f"{ANNOTATION_PREFIX}/jvm-flags"


class PodShapeError(ValueError):
    """A field of the pod flinkmem reads has the wrong type; `field` names it."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"{field_path} {problem}")
        self.field = field_path


def pod_role(labels: Mapping[str, str]) -> Role | None:
    """The role of a pod Flink labelled (component + type), or that opted in (component + flinkmem's label)."""
    if labels.get("type") in FLINK_POD_TYPES or labels.get(OPT_IN_LABEL) == "true":
        component = labels.get("component")
        return next((role for role in ROLES if role.key == component), None)
    return None


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
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise PodShapeError(f"{path}.env[{index}]", "must be an object with a name")
    for part in ("command", "args"):
        values = container.get(part)
        if values is not None and not isinstance(values, list):
            raise PodShapeError(f"{path}.{part}", "must be a list")


def pod_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's literal environment values (valueFrom entries are not known at admission)."""
    out: dict[str, str] = {}
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
            out[item["name"]] = item["value"]
    return out


def role_annotation(result: RoleValidation, source: FlinkSource | None) -> str:
    """The pod's record of what flinkmem resolved for it (role, source, memory, container)."""
    data: dict[str, Any] = {"role": result.role.key, "valid": result.valid}
    if source is not None:
        data["source"] = source.label
    if result.memory is not None:
        data.update(result.memory.to_dict())
    if result.container is not None:
        data["container"] = result.container.to_dict()
    if result.conflicts:
        data["conflicts"] = [c.message for c in result.conflicts]
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def memory_annotation(validation: Validation) -> str:
    """A FlinkDeployment's record of what flinkmem resolved for each of its roles."""
    return json.dumps(validation.to_dict(), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class PodPlan:
    """The target state of the main container; `changes` is empty when the pod already matches."""

    container_index: int
    resources: dict[str, Any]
    env: list[dict[str, Any]]
    annotations: dict[str, str]
    changes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def drift(self) -> tuple[str, ...]:
        """Changes that matter at run time (annotations alone do not)."""
        return tuple(c for c in self.changes if not c.startswith("annotation"))

    def json_patch(self, pod: Mapping[str, Any]) -> list[dict[str, Any]]:
        """RFC 6902 operations turning `pod` into the planned pod, built from the plan (no copy, no diff)."""
        base = f"/spec/containers/{self.container_index}"
        container = pod["spec"]["containers"][self.container_index]
        ops: list[dict[str, Any]] = [
            {
                "op": "replace" if "resources" in container else "add",
                "path": f"{base}/resources",
                "value": self.resources,
            },
            {"op": "replace" if "env" in container else "add", "path": f"{base}/env", "value": self.env},
        ]
        metadata = pod.get("metadata")
        present = metadata.get("annotations") if isinstance(metadata, Mapping) else None
        if not isinstance(metadata, Mapping):
            ops.append({"op": "add", "path": "/metadata", "value": {"annotations": dict(self.annotations)}})
        elif not isinstance(present, Mapping):
            ops.append({"op": "add", "path": "/metadata/annotations", "value": dict(self.annotations)})
        else:
            for key, value in self.annotations.items():
                # RFC 6901: "~" and "/" in a key are escaped as "~0" and "~1".
                path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
                ops.append({"op": "replace" if key in present else "add", "path": path, "value": value})
        return ops


def _bytes_of(value: Any) -> int | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        return quantity_bytes(str(value))
    except QuantityError:
        return None


def plan_pod(
    pod: Mapping[str, Any], result: RoleValidation, source: FlinkSource, container_name: str
) -> PodPlan | None:
    """The plan for a resolved role, or None when the pod has no such container or nothing resolved."""
    memory, container = result.memory, result.container
    if memory is None or container is None:
        return None
    found = main_container(pod, container_name)
    if found is None:
        return None
    index, current = found
    role = result.role
    changes: list[str] = []

    resources = {k: v for k, v in (current.get("resources") or {}).items()}
    requests = dict(resources.get("requests") or {})
    limits = dict(resources.get("limits") or {})
    request_bytes = _bytes_of(requests.get("memory"))
    if request_bytes is None or request_bytes < container.request_bytes:
        requests["memory"] = container.request
        request_bytes = container.request_bytes
        changes.append(f"requests.memory={container.request}")
    limit_bytes = _bytes_of(limits.get("memory"))
    wanted_limit = max(container.limit_bytes, request_bytes)
    if limit_bytes is None or limit_bytes < wanted_limit:
        limits["memory"] = container.limit if wanted_limit == container.limit_bytes else requests["memory"]
        changes.append(f"limits.memory={limits['memory']}")
    resources["requests"] = requests
    resources["limits"] = limits

    env = [dict(e) for e in (current.get("env") or [])]
    existing = next((e for e in env if e.get("name") == role.java_opts_env), None)
    if existing is not None and isinstance(existing.get("value"), str) and existing["value"].strip():
        base = existing["value"]
    else:
        base = " ".join(text for _, text in role_opts(source.config, {}, role) if text.strip())
    wanted_opts = with_memory_flags(base, memory)
    if existing is None:
        env.append({"name": role.java_opts_env, "value": wanted_opts})
        changes.append(f"env {role.java_opts_env}")
    elif existing.get("value") != wanted_opts or "valueFrom" in existing:
        existing.pop("valueFrom", None)
        existing["value"] = wanted_opts
        changes.append(f"env {role.java_opts_env}")

    annotations = {
        RESOLVED_ANNOTATION: role_annotation(result, source),
        JVM_FLAGS_ANNOTATION: memory.jvm_args,
    }
    metadata = pod.get("metadata")
    present = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    present = present if isinstance(present, Mapping) else {}
    for key, value in annotations.items():
        if present.get(key) != value:
            changes.append(f"annotation {key}")
    return PodPlan(index, resources, env, annotations, tuple(changes))


def apply_plan(pod: MutableMapping[str, Any], plan: PodPlan) -> None:
    """Writes the plan into a pod body in place (used on a copy, to compute a JSON patch)."""
    container = pod["spec"]["containers"][plan.container_index]
    container["resources"] = copy.deepcopy(plan.resources)
    container["env"] = copy.deepcopy(plan.env)
    metadata = pod.setdefault("metadata", {})
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict):
        annotations = metadata["annotations"] = {}
    annotations.update(plan.annotations)
