"""What the controller does with Flink sources and pods, as plain functions.

It records the resolved memory on each FlinkDeployment (an annotation plus an Event), and reports
Flink pods whose memory does not match their source: pods created while the webhook was down, pods
admitted before their FlinkDeployment or Flink's ConfigMap existed, and pods whose source changed
since. Where a FlinkDeployment and Flink's own ConfigMap both describe a cluster, it reports the
options on which they resolve differently. It never writes `spec` or `status`, which belong to the
Apache operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flinkmem.conventions import REASON_CONFLICT, REASON_NOT_APPLIED, REASON_RESOLVED, RESOLVED_ANNOTATION
from flinkmem.decisions.annotations import memory_annotation
from flinkmem.decisions.podplan import plan_pod
from flinkmem.decisions.validation import (
    LINE_UNRELEASED,
    LINE_UNSUPPORTED,
    Validation,
    validate_deployment,
    validate_role,
)
from flinkmem.engine.lines import not_exact_reason
from flinkmem.engine.sizes import format_size
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.pods import OpenedPod
from flinkmem.sources.roles import ROLES

__all__ = [
    "MEMORY_OPTION_PREFIXES",
    "Drift",
    "Reconciliation",
    "deployment_record",
    "options_that_differ",
    "pod_drift",
    "reconcile_deployment",
    "source_differences",
]

# What is compared between a FlinkDeployment and Flink's ConfigMap of the same cluster.
MEMORY_OPTION_PREFIXES = ("jobmanager.memory.", "taskmanager.memory.", "jobmanager.heap", "taskmanager.heap")


@dataclass(frozen=True)
class Reconciliation:
    validation: Validation
    annotation: str
    changed: bool
    event_type: str
    reason: str
    message: str


def _summary(validation: Validation) -> str:
    parts = []
    for result in validation.roles:
        memory, container = result.memory, result.container
        if memory is None or container is None:
            continue
        parts.append(
            f"{result.role}: total process {format_size(memory.total_process)}, heap {format_size(memory.jvm_heap)}, "
            f"container {container.request}/{container.limit}, JVM flags {memory.jvm_args}"
        )
    return "Memory resolved: " + "; ".join(parts)


def deployment_record(validation: Validation) -> tuple[str, str, str, str]:
    """What flinkmem records for a resolved FlinkDeployment: its annotation, and its Event's type, reason and
    message. The same whether admission writes the annotation or the controller does."""
    annotation = memory_annotation(validation)
    line_notes = [note.message for note in validation.notes if note.code in (LINE_UNSUPPORTED, LINE_UNRELEASED)]
    if validation.valid and any(note.code == LINE_UNSUPPORTED for note in validation.notes):
        # A line flinkmem does not support: nothing was resolved.
        return annotation, "Warning", REASON_NOT_APPLIED, "; ".join(line_notes)
    if validation.valid:
        return annotation, "Normal", REASON_RESOLVED, "; ".join([_summary(validation), *line_notes])
    return annotation, "Warning", REASON_CONFLICT, validation.reason


def reconcile_deployment(
    obj: Mapping[str, Any],
    container_name: str,
    validate: Callable[[Mapping[str, Any], str], Validation] = validate_deployment,
) -> Reconciliation:
    """The annotation and Event for a FlinkDeployment, or with `validate` for another resource holding a
    FlinkDeployment spec (a FlinkBlueGreenDeployment: `decisions.bluegreen.validate_bluegreen`)."""
    validation = validate(obj, container_name)
    annotation, event_type, reason, message = deployment_record(validation)
    present = ((obj.get("metadata") or {}).get("annotations") or {}).get(RESOLVED_ANNOTATION)
    return Reconciliation(validation, annotation, present != annotation, event_type, reason, message)


@dataclass(frozen=True)
class Drift:
    pod: str
    role: str
    source: str
    differences: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            f"{self.role} pod {self.pod} does not match the memory flinkmem derives from {self.source}: "
            f"needs {', '.join(self.differences)}"
        )


def pod_drift(pod: Mapping[str, Any], opened: OpenedPod) -> Drift | None:
    """The run-time differences between a pod and the memory derived from its source, if any."""
    source, index = opened.source, opened.container_index
    if source is None or index is None or not_exact_reason(source.version) is not None:
        return None  # nothing is expected of a pod flinkmem does not size
    result = validate_role(source, opened.role)
    plan = plan_pod(pod, index, result, source)
    if plan is None or not plan.drift:
        return None
    metadata = pod.get("metadata") or {}
    return Drift(
        pod=f"{metadata.get('namespace', '')}/{metadata.get('name', '')}",
        role=opened.role.title,
        source=source.label,
        differences=plan.drift,
    )


def source_differences(ours: FlinkSource, flinks: FlinkSource) -> tuple[str, ...]:
    """Per role, what the two sources resolve differently (memory, flags, Flink's `-D` options)."""
    found: list[str] = []
    for role in ROLES:
        a, b = validate_role(ours, role), validate_role(flinks, role)
        if a.memory is None or b.memory is None:
            if (a.memory is None) != (b.memory is None):
                found.append(f"{role}: resolves in one source only")
            continue
        for label, left, right in (
            ("total process", a.memory.total_process, b.memory.total_process),
            ("JVM flags", a.memory.jvm_args, b.memory.jvm_args),
            ("dynamic configs", a.memory.dynamic_configs, b.memory.dynamic_configs),
        ):
            if left != right:
                found.append(f"{role} {label}: {left} here, {right} in {flinks.label}")
    return tuple(found)


def options_that_differ(ours: FlinkSource, flinks: FlinkSource, prefixes: Sequence[str]) -> tuple[str, ...]:
    """Memory-relevant options whose text differs between the two sources."""
    keys = sorted({k for k in (*ours.config, *flinks.config) if k.startswith(tuple(prefixes))})
    return tuple(k for k in keys if ours.config.get(k) != flinks.config.get(k))
