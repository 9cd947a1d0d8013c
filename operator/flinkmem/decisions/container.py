"""Container memory of a Flink pod: what Flink's Kubernetes integration requests, and what flinkmem sets.

Flink requests the total process memory in whole MiB, rounded down, so a pod can end up to 1 MiB
below what the JVM is budgeted for; the limit is that MiB count times
`kubernetes.<role>.memory.limit-factor`, cut to an int (from Flink 1.15; before, the limit is the
request and the option is never read, `engine.lines`). flinkmem never goes below the budget: its
request is the total process memory rounded *up* to whole MiB, and its limit is total process memory
times the limit factor, rounded up to whole MiB and never below the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from flinkmem.engine import Config, MemoryConflict, OptionValue, Rule
from flinkmem.engine.javatext import java_double_to_string
from flinkmem.engine.lines import NEWEST, FlinkLine
from flinkmem.engine.options import java_text
from flinkmem.engine.sizes import MIB, mebibytes_int32
from flinkmem.sources.quantity import format_mebibytes
from flinkmem.sources.roles import Role

__all__ = ["ContainerMemory", "container_memory", "java_int_cast", "read_limit_factor"]


def java_int_cast(value: float) -> int:
    """Java's `(int)` of a double: NaN is 0, out-of-range values saturate, the rest truncate."""
    if math.isnan(value):
        return 0
    if value >= 2**31 - 1:
        return 2**31 - 1
    if value <= -(2**31):
        return -(2**31)
    return int(value)


@dataclass(frozen=True)
class ContainerMemory:
    """Memory for a Flink container, as Flink would set it and as flinkmem sets it."""

    limit_factor: float
    flink_request_mib: int
    flink_limit_mib: int
    request_mib: int
    limit_mib: int

    @property
    def request(self) -> str:
        return format_mebibytes(self.request_mib)

    @property
    def limit(self) -> str:
        return format_mebibytes(self.limit_mib)

    @property
    def request_bytes(self) -> int:
        return self.request_mib * MIB

    @property
    def limit_bytes(self) -> int:
        return self.limit_mib * MIB

    def to_dict(self) -> dict[str, object]:
        return {
            "limitFactor": self.limit_factor,
            "flinkRequest": format_mebibytes(self.flink_request_mib),
            "flinkLimit": format_mebibytes(self.flink_limit_mib),
            "request": self.request,
            "limit": self.limit,
        }


def read_limit_factor(config: Config, role: Role, line: FlinkLine = NEWEST) -> float:
    """`kubernetes.<role>.memory.limit-factor`; Flink's Kubernetes parameters refuse a factor below 1.

    Lines without the option (before 1.15) never read it: their factor is 1, whatever is configured.
    """
    if not line.memory_limit_factor:
        return 1.0
    option = role.limit_factor
    factor = option.read(config)
    if not factor >= 1:
        raw = config.get(option.key)
        raise MemoryConflict(
            Rule.LIMIT_FACTOR_BELOW_ONE,
            f"{option.key} is {java_text(raw) if raw is not None else factor}; Flink requires at least 1.",
            f"set {option.key} to 1 (limit equals request) or more",
            (OptionValue(option.key, None if raw is None else java_text(raw)),),
        )
    return factor


def container_memory(
    total_process: int,
    config: Config,
    role: Role,
    flink_total_process: int | None = None,
    line: FlinkLine = NEWEST,
) -> ContainerMemory:
    """The container for a process of `total_process` bytes, on Flink `line`.

    `flink_total_process` is the size Flink's own Kubernetes code sizes the container from when it
    differs from what the JVM runs with (1.x legacy heap keys: the client reads them as the process
    size, the start script in the pod as the heap).
    """
    factor = read_limit_factor(config, role, line)
    flink_request = mebibytes_int32(total_process if flink_total_process is None else flink_total_process)
    flink_limit = java_int_cast(flink_request * factor)
    request_mib = -(-total_process // MIB)
    if factor == 1.0:
        return ContainerMemory(factor, flink_request, flink_limit, request_mib, request_mib)
    if math.isinf(factor):
        limit_mib = max(request_mib, flink_limit)
    else:
        # The factor's decimal text (1.33, not its binary neighbour 1.3300000000000000710…), as users wrote it.
        exact = Fraction(Decimal(java_double_to_string(factor)))
        limit_mib = max(request_mib, math.ceil(Fraction(total_process) * exact / MIB))
    return ContainerMemory(factor, flink_request, flink_limit, request_mib, limit_mib)
