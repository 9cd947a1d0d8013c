"""The answer to a FlinkDeployment admission, as a plain function over plain data.

The admission service turns a review into `review_flinkdeployment(...)` and the returned `Decision`
into an answer. An UPDATE is refused only when it changes the memory-relevant
inputs into a conflict: metadata-only updates, status bookkeeping and updates of objects that were
already in conflict, with their memory inputs untouched, are admitted with a warning.

Every resource that holds a FlinkDeployment spec is answered by these rules (a `Subject` says how to
read it): the FlinkDeployment itself, and the FlinkBlueGreenDeployment whose template the operator
deploys as one (`decisions.bluegreen`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flinkmem.decisions.policy import ValidationMode
from flinkmem.decisions.validation import Finding, Validation, validate_deployment, warning_lines
from flinkmem.sources.flinkdeployment import memory_inputs

__all__ = ["DENY_CODE", "FLINKDEPLOYMENT", "Decision", "Outcome", "Subject", "review_flinkdeployment"]

DENY_CODE = 422


class Outcome(enum.Enum):
    """How a FlinkDeployment admission ended."""

    IGNORED = "ignored"  # not a CREATE or UPDATE with an object
    ALLOWED = "allowed"  # valid
    EXISTING_CONFLICT = "existing-conflict"  # an UPDATE that leaves an old conflict as it was
    WARNED = "warned"  # in conflict, admitted with warnings (warn mode)
    AUDITED = "audited"  # in conflict, admitted and recorded (audit mode)
    DENIED = "denied"  # in conflict, refused (enforce mode)
    DENIED_SELF = "denied-self"  # flinkmem's own identity tried to change a spec

    @property
    def reports_conflict(self) -> bool:
        """A conflict the mode acts on (logged once, counted, and for an UPDATE an Event)."""
        return self in (Outcome.WARNED, Outcome.AUDITED, Outcome.DENIED)


def _nothing(obj: Mapping[str, Any]) -> str:
    return ""


@dataclass(frozen=True)
class Subject:
    """A kind of resource that holds a FlinkDeployment spec: how to check it, which of its parts can
    change memory, and what a refusal adds after its name (where the spec is)."""

    kind: str
    validate: Callable[[Mapping[str, Any], str], Validation]
    memory_inputs: Callable[[Mapping[str, Any] | None], str]
    where: Callable[[Mapping[str, Any]], str] = _nothing


FLINKDEPLOYMENT = Subject("FlinkDeployment", validate_deployment, memory_inputs)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    outcome: Outcome
    code: int = 200
    message: str = ""
    warnings: tuple[str, ...] = ()
    conflicts: tuple[Finding, ...] = ()
    validation: Validation | None = None


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _name(obj: Mapping[str, Any]) -> str:
    namespace = _get(obj, "metadata", "namespace")
    name = _get(obj, "metadata", "name") or _get(obj, "metadata", "generateName") or "(unnamed)"
    return f"{namespace}/{name}" if namespace else str(name)


def review_flinkdeployment(
    operation: str,
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    mode: ValidationMode,
    container_name: str,
    *,
    actor: str | None = None,
    own_identity: str | None = None,
    subject: Subject = FLINKDEPLOYMENT,
) -> Decision:
    """The answer to one FlinkDeployment admission (or one of another `subject` holding a FlinkDeployment
    spec); `actor` is the requesting user's name.

    RBAC cannot tell a metadata patch from a spec patch, so flinkmem's own identity (`own_identity`)
    is refused here whenever it would change a spec: the controller only ever writes annotations.
    """
    if operation not in ("CREATE", "UPDATE") or new is None:
        return Decision(True, Outcome.IGNORED)
    if own_identity and actor == own_identity and _get(new, "spec") != _get(old, "spec"):
        message = f"flinkmem never writes spec: {actor} tried to change the spec of {_name(new)}"
        return Decision(False, Outcome.DENIED_SELF, 403, message)
    validation = subject.validate(new, container_name)
    warnings = [line for w in validation.warnings for line in warning_lines(w.message)]
    if validation.valid:
        return Decision(True, Outcome.ALLOWED, warnings=tuple(warnings), validation=validation)
    conflicts = validation.conflicts
    if operation == "UPDATE" and old is not None and subject.memory_inputs(old) == subject.memory_inputs(new):
        warnings.extend(warning_lines(f"flinkmem: memory conflict left as it was: {validation.reason}"))
        return Decision(
            True, Outcome.EXISTING_CONFLICT, warnings=tuple(warnings), conflicts=conflicts, validation=validation
        )
    if mode is ValidationMode.ENFORCE:
        message = f"flinkmem refused {subject.kind} {_name(new)}{subject.where(new)}: {validation.reason}"
        return Decision(False, Outcome.DENIED, DENY_CODE, message, tuple(warnings), conflicts, validation)
    if mode is ValidationMode.WARN:
        warnings.extend(warning_lines(f"flinkmem (warn mode): {validation.reason}"))
        return Decision(True, Outcome.WARNED, warnings=tuple(warnings), conflicts=conflicts, validation=validation)
    return Decision(True, Outcome.AUDITED, warnings=tuple(warnings), conflicts=conflicts, validation=validation)
