"""Sizing a Flink pod: the change its main container needs to match the derived memory.

Only the main container is touched. Its memory request and limit are raised to at least what
`decisions.container.container_memory` derives (never lowered). The JVM flags Flink's start scripts
compute are the derived ones; only where the user's Java options carry a memory flag the JVM would keep
instead, the role's Java-options variable (`FLINK_ENV_JAVA_OPTS_JM`, `FLINK_ENV_JAVA_OPTS_TM`) is set to
the user's options for that role with every memory flag replaced by the derived ones. The start scripts
read that variable instead of `env.java.(default-)opts.<role>` and append it after the flags they
compute, so the derived flags are the ones the JVM keeps. Planning the same pod twice yields no further
change.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from flinkmem.conventions import JVM_FLAGS_ANNOTATION, RESOLVED_ANNOTATION, SIZED_LABEL
from flinkmem.decisions.annotations import role_annotation
from flinkmem.decisions.javaopts import flags_overriding, role_opts, with_memory_flags
from flinkmem.decisions.validation import RoleValidation
from flinkmem.engine.lines import line_of
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.pods import pod_env
from flinkmem.sources.quantity import QuantityError, quantity_bytes

__all__ = ["PodPlan", "apply_plan", "plan_pod", "sized_digest"]


@dataclass(frozen=True)
class PodPlan:
    """The target state of the main container; `changes` is empty when the pod already matches."""

    container_index: int
    resources: dict[str, Any]
    env: list[dict[str, Any]]
    annotations: dict[str, str]
    changes: tuple[str, ...] = field(default_factory=tuple)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def env_changed(self) -> bool:
        return any(c.startswith("env ") for c in self.changes)

    @property
    def drift(self) -> tuple[str, ...]:
        """Changes that matter at run time (annotations and labels alone do not)."""
        return tuple(c for c in self.changes if not c.startswith(("annotation", "label")))

    def json_patch(self, pod: Mapping[str, Any]) -> list[dict[str, Any]]:
        """RFC 6902 operations turning `pod` into the planned pod, built from the plan (no copy, no diff)."""
        base = f"/spec/containers/{self.container_index}"
        container = pod["spec"]["containers"][self.container_index]
        ops: list[dict[str, Any]] = [
            {
                "op": "replace" if "resources" in container else "add",
                "path": f"{base}/resources",
                "value": self.resources,
            }
        ]
        if self.env_changed:
            ops.append({"op": "replace" if "env" in container else "add", "path": f"{base}/env", "value": self.env})
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
        labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
        if self.labels and not isinstance(labels, Mapping):
            ops.append({"op": "add", "path": "/metadata/labels", "value": dict(self.labels)})
        elif self.labels and isinstance(labels, Mapping):
            for key, value in self.labels.items():
                path = "/metadata/labels/" + key.replace("~", "~0").replace("/", "~1")
                ops.append({"op": "replace" if key in labels else "add", "path": path, "value": value})
        return ops


def _bytes_of(value: Any) -> int | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        return quantity_bytes(str(value))
    except QuantityError:
        return None


def plan_pod(pod: Mapping[str, Any], index: int, result: RoleValidation, source: FlinkSource) -> PodPlan | None:
    """The plan for the main container at `index` (as `sources.pods.main_container` found it), or None
    when nothing resolved."""
    memory, container = result.memory, result.container
    if memory is None or container is None:
        return None
    current = pod["spec"]["containers"][index]
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

    # The pod's own list until the plan changes it; copied only then (a pod may carry thousands of entries).
    env: list[dict[str, Any]] = current.get("env") or []
    existing = next((e for e in env if e.get("name") == role.java_opts_env), None)
    # The role's options variable is written only when the JVM would otherwise keep a memory flag of the
    # user's over Flink's (or when its value comes from elsewhere and cannot be read here): Flink's own
    # flags are the derived ones, so the patch carries no one's Java options it does not have to.
    from_elsewhere = existing is not None and "valueFrom" in existing
    line = line_of(source.version)
    if from_elsewhere or flags_overriding(source.config, pod_env(current), role, memory, line):
        if existing is not None and isinstance(existing.get("value"), str) and existing["value"].strip():
            base = existing["value"]
        else:
            base = " ".join(text for _, text in role_opts(source.config, {}, role, line) if text.strip())
        wanted_opts = with_memory_flags(base, memory)
        if existing is None:
            env = [*env, {"name": role.java_opts_env, "value": wanted_opts}]
            changes.append(f"env {role.java_opts_env}")
        elif existing.get("value") != wanted_opts or from_elsewhere:
            replaced = {k: v for k, v in existing.items() if k != "valueFrom"} | {"value": wanted_opts}
            env = [replaced if e is existing else e for e in env]
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
    opts = [e for e in env if e.get("name") == role.java_opts_env]
    labels = {SIZED_LABEL: sized_digest(resources, opts, annotations)}
    present_labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    if not isinstance(present_labels, Mapping) or present_labels.get(SIZED_LABEL) != labels[SIZED_LABEL]:
        changes.append(f"label {SIZED_LABEL}")
    return PodPlan(index, resources, env, annotations, tuple(changes), labels)


def sized_digest(resources: Mapping[str, Any], opts: list[dict[str, Any]], annotations: Mapping[str, str]) -> str:
    """The value of the sized label: a digest of the main container's resources, the role's Java options
    variable (when flinkmem sets it) and the record (a label value holds at most 63 characters)."""
    text = json.dumps([resources, opts, annotations], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def apply_plan(pod: MutableMapping[str, Any], plan: PodPlan) -> None:
    """Writes the plan into a pod body in place (used on a copy, to compute a JSON patch)."""
    container = pod["spec"]["containers"][plan.container_index]
    container["resources"] = copy.deepcopy(plan.resources)
    if plan.env_changed:
        container["env"] = copy.deepcopy(plan.env)
    metadata = pod.setdefault("metadata", {})
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict):
        annotations = metadata["annotations"] = {}
    annotations.update(plan.annotations)
    if plan.labels:
        labels = metadata.get("labels")
        if not isinstance(labels, dict):
            labels = metadata["labels"] = {}
        labels.update(plan.labels)
