"""What the controller does with FlinkDeployments and JobManager pods, as plain functions.

It records the resolved memory on each FlinkDeployment (an annotation plus an Event) and reports
JobManager pods whose memory does not match it, for example pods created while the webhook was
down. It never writes `spec` or `status`, which belong to the Apache operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flinkmem.engine.sizes import format_size
from flinkmem.podpatch import RESOLVED_ANNOTATION, memory_annotation, plan_pod
from flinkmem.validation import Validation, validate_deployment

__all__ = ["Drift", "Reconciliation", "pod_drift", "reconcile_deployment"]


@dataclass(frozen=True)
class Reconciliation:
    validation: Validation
    annotation: str
    changed: bool
    event_type: str
    reason: str
    message: str


def reconcile_deployment(obj: Mapping[str, Any], container_name: str) -> Reconciliation:
    validation = validate_deployment(obj, container_name)
    annotation = memory_annotation(validation)
    present = ((obj.get("metadata") or {}).get("annotations") or {}).get(RESOLVED_ANNOTATION)
    memory = validation.memory
    if validation.valid and memory is not None and validation.container is not None:
        message = (
            f"JobManager memory resolved: total process {format_size(memory.total_process)}, heap "
            f"{format_size(memory.heap)}; container {validation.container.request}/{validation.container.limit}; "
            f"JVM flags {memory.jvm_args}"
        )
        return Reconciliation(validation, annotation, present != annotation, "Normal", "MemoryResolved", message)
    return Reconciliation(validation, annotation, present != annotation, "Warning", "MemoryConflict", validation.reason)


@dataclass(frozen=True)
class Drift:
    pod: str
    deployment: str
    differences: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            f"JobManager pod {self.pod} does not match the memory derived for FlinkDeployment "
            f"{self.deployment}: needs {', '.join(self.differences)}"
        )


def pod_drift(pod: Mapping[str, Any], deployment: Mapping[str, Any], container_name: str) -> Drift | None:
    """The run-time differences between a pod and its FlinkDeployment's derived memory, if any."""
    validation = validate_deployment(deployment, container_name)
    plan = plan_pod(pod, validation, container_name)
    if plan is None or not plan.drift:
        return None
    meta = pod.get("metadata") or {}
    return Drift(
        pod=f"{meta.get('namespace', '')}/{meta.get('name', '')}",
        deployment=str((deployment.get("metadata") or {}).get("name", "")),
        differences=plan.drift,
    )
