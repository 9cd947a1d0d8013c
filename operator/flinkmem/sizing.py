"""JobManager container memory: what Flink's Kubernetes integration requests, and what flinkmem sets.

Flink requests the total process memory in whole MiB, rounded down, so a pod can end up to 1 MiB
below what the JVM is budgeted for; the limit is that MiB count times
`kubernetes.jobmanager.memory.limit-factor`, cut to an int. flinkmem never goes below the budget:
its request is the total process memory rounded *up* to whole MiB, and its limit is total process
memory times the limit factor, rounded up to whole MiB and never below the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from flinkmem.engine import Config, JobManagerMemory, MemoryConflict, OptionValue, Rule
from flinkmem.engine.javatext import java_double_to_string
from flinkmem.engine.options import DoubleOption, java_text
from flinkmem.engine.sizes import MIB, mebibytes_int32
from flinkmem.quantity import format_mebibytes

__all__ = ["LIMIT_FACTOR", "ContainerMemory", "container_memory", "java_int_cast"]

LIMIT_FACTOR = DoubleOption("kubernetes.jobmanager.memory.limit-factor", 1.0)


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
    """Memory for the JobManager container, as Flink would set it and as flinkmem sets it."""

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


def read_limit_factor(config: Config) -> float:
    factor = LIMIT_FACTOR.read(config)
    if not factor >= 1:
        raw = config.get(LIMIT_FACTOR.key)
        raise MemoryConflict(
            Rule.LIMIT_FACTOR_BELOW_ONE,
            f"{LIMIT_FACTOR.key} is {java_text(raw) if raw is not None else factor}; Flink requires at least 1.",
            f"set {LIMIT_FACTOR.key} to 1 (limit equals request) or more",
            (OptionValue(LIMIT_FACTOR.key, None if raw is None else java_text(raw)),),
        )
    return factor


def container_memory(memory: JobManagerMemory, config: Config) -> ContainerMemory:
    factor = read_limit_factor(config)
    flink_request = mebibytes_int32(memory.total_process)
    flink_limit = java_int_cast(flink_request * factor)
    request_mib = -(-memory.total_process // MIB)
    if math.isinf(factor):
        limit_mib = max(request_mib, flink_limit)
    else:
        # The factor's decimal text (1.33, not its binary neighbour 1.3300000000000000710…), as users wrote it.
        exact = Fraction(Decimal(java_double_to_string(factor)))
        limit_mib = max(request_mib, math.ceil(Fraction(memory.total_process) * exact / MIB))
    return ContainerMemory(factor, flink_request, flink_limit, request_mib, limit_mib)
