"""What a platform team tells flinkmem to do: the validation mode, and which namespaces it looks at.

Both are plain values read from the settings; every part of flinkmem (the two webhooks and the
controller) asks the same `Scope`, so a namespace left out of one is left out of all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["DEFAULT_EXCLUDED", "Scope", "ValidationMode"]


class ValidationMode(enum.Enum):
    ENFORCE = "enforce"  # refuse conflicting FlinkDeployments
    WARN = "warn"  # admit them, with the conflicts as kubectl warnings
    AUDIT = "audit"  # admit them silently; conflicts only go to logs, metrics and Events


# Never looked at, whatever else is configured: the cluster's own workloads.
DEFAULT_EXCLUDED = ("kube-system",)


@dataclass(frozen=True)
class Scope:
    """The namespaces flinkmem validates, sizes and watches: `namespaces` (empty: all) except `excluded`.

    The same list goes into the webhook configurations' namespaceSelector (the chart, development
    registration), so the API server never asks about an excluded namespace and the controller never
    acts in one (before, a Flink pod the webhooks skipped could be evicted as "drifted" again and again).
    """

    namespaces: tuple[str, ...] = ()
    excluded: tuple[str, ...] = DEFAULT_EXCLUDED

    def covers(self, namespace: object) -> bool:
        if namespace in self.excluded:
            return False
        return not self.namespaces or namespace in self.namespaces
