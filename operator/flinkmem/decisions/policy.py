"""What a platform team tells flinkmem to do: the validation mode, and which namespaces it looks at.

Both are plain values read from the settings; every part of flinkmem (the two webhooks and the
controller) asks the same `Scope`, so a namespace left out of one is left out of all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Scope", "ValidationMode"]


class ValidationMode(enum.Enum):
    ENFORCE = "enforce"  # refuse conflicting FlinkDeployments
    WARN = "warn"  # admit them, with the conflicts as kubectl warnings
    AUDIT = "audit"  # admit them silently; conflicts only go to logs, metrics and Events


@dataclass(frozen=True)
class Scope:
    """The namespaces flinkmem validates, sizes and watches: `namespaces` (empty: all)."""

    namespaces: tuple[str, ...] = ()

    def covers(self, namespace: object) -> bool:
        return not self.namespaces or namespace in self.namespaces
