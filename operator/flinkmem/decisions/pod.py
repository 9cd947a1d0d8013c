"""The decision about one Flink pod at admission, as a plain function over plain data.

A pod is sized when flinkmem finds its source, is exact for the Flink line it runs, and the role's
memory resolves; otherwise it is admitted unchanged with the reason (fail open: a pod is never refused
because flinkmem could not size it). A pod of an unreleased or unsupported line is left exactly as
Flink builds it. The admission service calls this for either transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flinkmem.decisions.podplan import PodPlan, plan_pod
from flinkmem.decisions.validation import validate_role, warning_lines
from flinkmem.engine.lines import not_exact_reason
from flinkmem.sources.pods import SourceLookup, open_pod
from flinkmem.sources.roles import Role

__all__ = ["PodAdmission", "admit_pod", "event_target"]


@dataclass(frozen=True)
class PodAdmission:
    """What to do with a pod: patch it (`plan`), or leave it unchanged because of `unchanged`."""

    role: Role
    plan: PodPlan | None = None
    warnings: tuple[str, ...] = ()
    unchanged: str | None = None  # why the pod is admitted as it is (an Event says so too)
    deployment: Mapping[str, Any] | None = None  # its FlinkDeployment, where Events about it go
    result: str | None = None  # "valid" or the first conflict's rule, when the memory was resolved

    @property
    def changed(self) -> bool:
        return self.plan is not None and self.plan.changed


def _unchanged(
    role: Role, reason: str, deployment: Mapping[str, Any] | None = None, result: str | None = None
) -> PodAdmission:
    lines = tuple(warning_lines(f"flinkmem left this {role} pod unchanged: {reason}"))
    return PodAdmission(role, None, lines, reason, deployment, result)


async def admit_pod(
    pod: Mapping[str, Any], lookup: SourceLookup, *, container_name: str, resource_plural: str
) -> PodAdmission | None:
    """The admission of a pod, or None when it is not a Flink pod. Lookup failures propagate."""
    opened = await open_pod(pod, lookup, container_name=container_name, resource_plural=resource_plural)
    if opened is None:
        return None
    role, source = opened.role, opened.source
    version = opened.flink_version
    not_exact = not_exact_reason(version) if version is not None else None
    if not_exact is not None:
        return _unchanged(role, not_exact, opened.deployment)
    if source is None or opened.container_index is None:
        return _unchanged(role, opened.reason or "no configuration source", opened.deployment)
    result = validate_role(source, role)
    rule = "valid" if result.valid else result.conflicts[0].code
    if result.memory is None:
        why = result.conflicts[0].message if result.conflicts else "its memory does not resolve"
        return _unchanged(role, f"{source.label} is invalid: {why}", opened.deployment, rule)
    warnings = [line for n in source.notices for line in warning_lines(f"flinkmem: {n.message}")]
    if result.conflicts:
        # The memory itself resolved; the patch overrides what contradicts it (a -Xmx in the options).
        reason = "; ".join(c.message for c in result.conflicts)
        warnings.extend(warning_lines(f"flinkmem applied the derived memory over: {reason}"))
    plan = plan_pod(pod, opened.container_index, result, source)
    return PodAdmission(role, plan, tuple(warnings), None, opened.deployment, rule)


def event_target(pod: Mapping[str, Any], deployment: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Where an Event about a new pod can go: its FlinkDeployment, else the pod's owner (it has no uid yet)."""
    if deployment is not None:
        return deployment
    meta = pod.get("metadata") or {}
    refs = meta.get("ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, Mapping) and ref.get("uid") and ref.get("name"):
            return {
                "apiVersion": ref.get("apiVersion"),
                "kind": ref.get("kind"),
                "metadata": {"name": ref["name"], "namespace": meta.get("namespace"), "uid": ref["uid"]},
            }
    return None
