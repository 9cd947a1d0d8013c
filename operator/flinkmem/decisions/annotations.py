"""The records flinkmem writes on objects: what it resolved for a FlinkDeployment and for a pod.

Both are compact JSON under `flinkmem.io/resolved-memory`. Their messages are redacted like every
message flinkmem writes, and each record is capped at ANNOTATION_LIMIT bytes (Kubernetes allows
256 KiB for all of an object's annotations together): past it, the messages give way to their count.
"""

from __future__ import annotations

import json
from typing import Any

from flinkmem.decisions.redaction import redact_values
from flinkmem.decisions.validation import RoleValidation, Validation
from flinkmem.sources.model import FlinkSource

__all__ = ["ANNOTATION_LIMIT", "memory_annotation", "role_annotation"]

ANNOTATION_LIMIT = 32 * 1024
_MESSAGE_KEYS = ("conflicts", "warnings")


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _without_messages(value: Any) -> Any:
    """The record with every list of conflicts or warnings replaced by its length."""
    if isinstance(value, dict):
        return {
            key: len(item) if key in _MESSAGE_KEYS and isinstance(item, list) else _without_messages(item)
            for key, item in value.items()
        }
    return value


def _bounded(data: dict[str, Any]) -> str:
    text = _dump(redact_values(data))
    if len(text.encode()) <= ANNOTATION_LIMIT:
        return text
    short = _without_messages(redact_values(data))
    short["truncated"] = True
    return _dump(short)


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
    return _bounded(data)


def memory_annotation(validation: Validation) -> str:
    """A FlinkDeployment's record of what flinkmem resolved for each of its roles."""
    return _bounded(validation.to_dict())
