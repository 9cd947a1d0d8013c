"""Why Flink refuses a memory configuration, as data.

Each refusal names the rule that broke, the options involved with their values, and a fix, so the
CLI, the admission webhook and Kubernetes Events can each render it in their own way.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = [
    "FlinkMemError",
    "InvalidOptionValue",
    "MemoryConflict",
    "MemoryOverflow",
    "OptionValue",
    "Rule",
    "UnsupportedInput",
]


class Rule(enum.Enum):
    """The broken rule; values are stable identifiers used in JSON output and metrics."""

    NO_SIZING_OPTION = "no-sizing-option"
    INVALID_VALUE = "invalid-value"
    METASPACE_AND_OVERHEAD_EXCEED_PROCESS = "metaspace-and-overhead-exceed-process"
    FLINK_NOT_ABOVE_OFF_HEAP = "flink-not-above-off-heap"
    HEAP_PLUS_OFF_HEAP_MISMATCH = "heap-plus-off-heap-mismatch"
    HEAP_EXCEEDS_FLINK = "heap-exceeds-flink"
    OVERHEAD_RANGE_INCONSISTENT = "overhead-range-inconsistent"
    DERIVED_OVERHEAD_OUT_OF_RANGE = "derived-overhead-out-of-range"
    PROCESS_BELOW_FLINK_PLUS_METASPACE = "process-below-flink-plus-metaspace"
    SIZE_OVERFLOW = "size-overflow"
    LEGACY_HEAP_INVALID = "legacy-heap-invalid"
    LIMIT_FACTOR_BELOW_ONE = "limit-factor-below-one"
    # TaskManager rules.
    NETWORK_RANGE_INCONSISTENT = "network-range-inconsistent"
    MANAGED_FRACTION_OUT_OF_RANGE = "managed-fraction-out-of-range"
    FINE_GRAINED_EXCEEDS_FLINK = "fine-grained-exceeds-flink"
    NO_ROOM_FOR_TASK_HEAP = "no-room-for-task-heap"
    DERIVED_NETWORK_OUT_OF_RANGE = "derived-network-out-of-range"
    NETWORK_BUFFERS_MISMATCH = "network-buffers-mismatch"
    CPU_CORES_NOT_POSITIVE = "cpu-cores-not-positive"
    SLOTS_NOT_POSITIVE = "slots-not-positive"


class OptionValue(NamedTuple):
    """One option as the rule saw it: the configured text (None when the default applied)."""

    key: str
    configured: str | None
    effective: str | None = None

    def render(self) -> str:
        if self.configured is None:
            shown = f"default {self.effective}" if self.effective is not None else "not set"
            return f"{self.key} ({shown})"
        if self.effective is not None and self.effective != self.configured:
            return f"{self.key}={self.configured!r} ({self.effective})"
        return f"{self.key}={self.configured!r}"


class FlinkMemError(Exception):
    """Flink would refuse this configuration. Carries the rule, the options and the fix."""

    rule: Rule

    def __init__(self, rule: Rule, problem: str, fix: str, options: tuple[OptionValue, ...] = ()) -> None:
        self.rule = rule
        self.problem = problem
        self.fix = fix
        self.options = options
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.problem} Fix: {self.fix}"

    @property
    def option_keys(self) -> tuple[str, ...]:
        return tuple(o.key for o in self.options)

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule.value,
            "message": self.message,
            "problem": self.problem,
            "fix": self.fix,
            "options": [{"key": o.key, "configured": o.configured, "effective": o.effective} for o in self.options],
        }


class InvalidOptionValue(FlinkMemError):
    """A value Flink cannot parse (a size, fraction, boolean or integer)."""


class MemoryConflict(FlinkMemError):
    """Values that parse but contradict each other or Flink's memory model."""


class MemoryOverflow(FlinkMemError):
    """A sum or product of sizes exceeds a signed 64-bit byte count, which Flink refuses."""


class UnsupportedInput(ValueError):
    """Input the engine does not handle at all (an unknown Flink version or deployment mode)."""
