"""Sizing a JobManager pod: the change its main container needs to match the derived memory.

Only the JobManager container is touched. Its memory request and limit are raised to at least what
`sizing.container_memory` derives (never lowered), and `FLINK_ENV_JAVA_OPTS_JM` is set to the user's
JobManager Java options with every memory flag replaced by the derived ones. Flink's start scripts
read that variable instead of `env.java.(default-)opts.jobmanager` and append it after the flags they
compute, so the derived flags are the ones the JVM keeps. Planning the same pod twice yields no
further change.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from flinkmem.jvmopts import JM_OPTS_ENV, jobmanager_opts, with_memory_flags
from flinkmem.quantity import QuantityError, quantity_bytes
from flinkmem.settings import ANNOTATION_PREFIX, OPT_IN_LABEL
from flinkmem.validation import Validation

__all__ = [
    "PodPlan",
    "apply_plan",
    "is_jobmanager_pod",
    "memory_annotation",
    "owner_deployment_name",
    "plan_pod",
]

JOBMANAGER_TYPES = ("flink-native-kubernetes", "flink-standalone-kubernetes")
RESOLVED_ANNOTATION = f"{ANNOTATION_PREFIX}/resolved-memory"
JVM_FLAGS_ANNOTATION = f"{ANNOTATION_PREFIX}/jvm-flags"


def is_jobmanager_pod(labels: Mapping[str, str]) -> bool:
    if labels.get(OPT_IN_LABEL) == "true":
        return True
    return labels.get("component") == "jobmanager" and labels.get("type") in JOBMANAGER_TYPES


def owner_deployment_name(labels: Mapping[str, str]) -> str | None:
    """Flink labels every JobManager pod with `app=<FlinkDeployment name>`."""
    name = labels.get("app")
    return name if name else None


def memory_annotation(validation: Validation) -> str:
    memory = validation.memory
    container = validation.container
    data: dict[str, Any] = {"valid": validation.valid}
    if memory is not None:
        data.update(memory.to_dict())
    if container is not None:
        data["container"] = container.to_dict()
    if validation.conflicts:
        data["conflicts"] = [c.message for c in validation.conflicts]
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class PodPlan:
    """The target state of the JobManager container; `changes` is empty when the pod already matches."""

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


def _bytes_of(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return quantity_bytes(str(value))
    except QuantityError:
        return None


def plan_pod(pod: Mapping[str, Any], validation: Validation, container_name: str) -> PodPlan | None:
    """The plan for a valid resolution, or None when the pod has no such container."""
    memory, container, spec = validation.memory, validation.container, validation.spec
    if memory is None or container is None or spec is None:
        return None
    containers = (pod.get("spec") or {}).get("containers") or []
    index = next(
        (i for i, c in enumerate(containers) if isinstance(c, Mapping) and c.get("name") == container_name), None
    )
    if index is None:
        return None
    current = containers[index]
    changes: list[str] = []

    resources = copy.deepcopy(dict(current.get("resources") or {}))
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

    env = [dict(e) for e in (current.get("env") or []) if isinstance(e, Mapping)]
    existing = next((e for e in env if e.get("name") == JM_OPTS_ENV), None)
    if existing is not None and isinstance(existing.get("value"), str) and existing["value"].strip():
        base = existing["value"]
    else:
        base = " ".join(text for _, text in jobmanager_opts(spec.config, {}) if text.strip())
    wanted_opts = with_memory_flags(base, memory)
    if existing is None:
        env.append({"name": JM_OPTS_ENV, "value": wanted_opts})
        changes.append(f"env {JM_OPTS_ENV}")
    elif existing.get("value") != wanted_opts or "valueFrom" in existing:
        existing.pop("valueFrom", None)
        existing["value"] = wanted_opts
        changes.append(f"env {JM_OPTS_ENV}")

    annotations = {
        RESOLVED_ANNOTATION: memory_annotation(validation),
        JVM_FLAGS_ANNOTATION: memory.jvm_args,
    }
    present = (pod.get("metadata") or {}).get("annotations") or {}
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
