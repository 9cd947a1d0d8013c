"""JobManager container memory: what Flink's Kubernetes integration would set (memory-model notes,
section 11) and what flinkmem sets instead: a request never below the total process memory (whole
MiB rounded up) and a limit of total process memory times the limit factor, rounded up."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest

from flinkmem.decisions.container import ContainerMemory, container_memory, java_int_cast, read_limit_factor
from flinkmem.engine import (
    Config,
    DeploymentMode,
    FlinkVersion,
    InvalidOptionValue,
    JobManagerMemory,
    MemoryConflict,
    Rule,
    resolve_jobmanager,
)
from flinkmem.sources.roles import JOBMANAGER

MIB = 1 << 20
TIB = 1 << 40
FACTOR = "kubernetes.jobmanager.memory.limit-factor"
INVERSE_0_1F = "0.11111111295076065"  # Double.toString(0.1f / (1 - 0.1f))


def memory_with_total(total_process: int) -> JobManagerMemory:
    """A resolved JobManager whose only relevant number here is its total process memory."""
    return JobManagerMemory(
        version=FlinkVersion(2, 3),
        mode=DeploymentMode.NATIVE,
        heap=0,
        off_heap=0,
        metaspace=0,
        overhead=0,
        total_flink=0,
        total_process=total_process,
        direct_memory_limit_enabled=False,
    )


def sized(total_process: int, factor: str | None = None) -> ContainerMemory:
    config: Config = {} if factor is None else {FACTOR: factor}
    return container_memory(total_process, config, JOBMANAGER)


# ---------------------------------------------------------------------------------------------
# Java's (int) cast of a double


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2049.047, 2049),
        (2400.0, 2400),
        (-1.5, -1),
        (0.999, 0),
        (2147483646.9, 2147483646),
        (2147483647.5, 2147483647),
        (1.6e13, 2147483647),
        (math.inf, 2147483647),
        (-1e20, -(2**31)),
        (-math.inf, -(2**31)),
        (math.nan, 0),
    ],
)
def test_java_int_cast(value: float, expected: int) -> None:
    assert java_int_cast(value) == expected


# ---------------------------------------------------------------------------------------------
# section 11 table, Flink's values next to flinkmem's


def test_process_1600m() -> None:
    sizes = sized(1600 * MIB)
    assert (sizes.flink_request_mib, sizes.flink_limit_mib) == (1600, 1600)
    assert (sizes.request, sizes.limit) == ("1600Mi", "1600Mi")
    assert sizes.limit_factor == 1.0


def test_flink_2000m_request_never_below_total_process() -> None:
    # Derived total process 2628430511 B = 2506.67 MiB: Flink floors to 2506Mi, flinkmem rounds up.
    memory = resolve_jobmanager({"jobmanager.memory.flink.size": "2000m"}, FlinkVersion(2, 3))
    assert memory.total_process == 2628430511
    sizes = container_memory(memory.total_process, {}, JOBMANAGER)
    assert sizes.flink_request_mib == 2506
    assert sizes.request == "2507Mi"
    assert sizes.limit == "2507Mi"
    assert sizes.request_bytes >= memory.total_process > sizes.flink_request_mib * MIB


def test_heap_3000m_request() -> None:
    # heap 3000m + off-heap 128m + metaspace 256m = 3384m; overhead from the inverse fraction.
    memory = resolve_jobmanager({"jobmanager.memory.heap.size": "3000m"}, FlinkVersion(2, 3))
    flink_and_meta = 3384 * MIB
    overhead = math.floor(Fraction(flink_and_meta) * Fraction(Decimal(INVERSE_0_1F)))
    assert memory.total_process == flink_and_meta + overhead
    sizes = container_memory(memory.total_process, {}, JOBMANAGER)
    assert sizes.flink_request_mib == 3760
    assert sizes.request_mib == 3761  # 3760 MiB and a few bytes


def test_heap_1g_request() -> None:
    memory = resolve_jobmanager({"jobmanager.memory.heap.size": "1g"}, FlinkVersion(2, 3))
    sizes = container_memory(memory.total_process, {}, JOBMANAGER)
    assert (sizes.flink_request_mib, sizes.request_mib) == (1600, 1600)


def test_process_bytes_not_a_whole_mib() -> None:
    sizes = sized(1000000001)
    assert (sizes.flink_request_mib, sizes.flink_limit_mib) == (953, 953)
    assert (sizes.request_mib, sizes.limit_mib) == (954, 954)


def test_factor_1_5() -> None:
    sizes = sized(1600 * MIB, "1.5")
    assert (sizes.flink_request_mib, sizes.flink_limit_mib) == (1600, 2400)
    assert (sizes.request, sizes.limit) == ("1600Mi", "2400Mi")


def test_factor_1_001() -> None:
    sizes = sized(2047 * MIB, "1.001")
    assert (sizes.flink_request_mib, sizes.flink_limit_mib) == (2047, 2049)
    assert sizes.limit_mib == 2050  # 2047 * 1.001 = 2049.047 MiB, rounded up


@pytest.mark.parametrize(
    ("process_mib", "factor", "flink_limit", "limit"),
    [
        (3000, "1.33", 3990, 3990),  # 3000 MiB * 1.33 is exactly 3990 MiB
        (1000, "1.1", 1100, 1100),
        (1000, "1.2", 1200, 1200),
        (2000, "1.05", 2100, 2100),
    ],
)
def test_limit_of_an_exact_product_is_not_rounded_up(
    process_mib: int, factor: str, flink_limit: int, limit: int
) -> None:
    # The factor is the decimal the user wrote; a product that is a whole number of MiB needs no
    # rounding, and Flink gives the same number.
    sizes = sized(process_mib * MIB, factor)
    assert sizes.flink_limit_mib == flink_limit
    assert sizes.limit_mib == limit


def test_factor_1e10_saturates_in_flink() -> None:
    sizes = sized(1600 * MIB, "1e10")
    assert sizes.flink_limit_mib == 2147483647  # (int) of 1.6e13 saturates
    assert sizes.limit_mib == 1600 * 10**10
    assert sizes.limit_mib >= sizes.request_mib


def test_process_4096t_wraps_to_zero_in_flink() -> None:
    sizes = sized(4096 * TIB)
    assert (sizes.flink_request_mib, sizes.flink_limit_mib) == (0, 0)
    assert sizes.request_mib == 4096 * 2**20  # 2^32 MiB, no wrap
    assert sizes.request_bytes == 4096 * TIB


def test_process_4096t_resolves_and_sizes() -> None:
    memory = resolve_jobmanager({"jobmanager.memory.process.size": "4096t"}, FlinkVersion(2, 3))
    sizes = container_memory(memory.total_process, {}, JOBMANAGER)
    assert sizes.flink_request_mib == 0
    assert sizes.request_bytes == memory.total_process


def test_infinite_factor_is_accepted_by_flink() -> None:
    sizes = sized(1600 * MIB, "Infinity")
    assert sizes.flink_limit_mib == 2147483647
    assert sizes.limit_mib >= sizes.request_mib


@pytest.mark.parametrize("factor", ["0.5", "0.99", "0", "-1", "NaN", "0.9999999999999999"])
def test_factor_below_one_refused(factor: str) -> None:
    with pytest.raises(MemoryConflict) as info:
        sized(1600 * MIB, factor)
    assert info.value.rule is Rule.LIMIT_FACTOR_BELOW_ONE
    assert info.value.option_keys == (FACTOR,)


@pytest.mark.parametrize("factor", ["abc", "", "1,5", "inf"])
def test_factor_unreadable(factor: str) -> None:
    with pytest.raises(InvalidOptionValue):
        sized(1600 * MIB, factor)


def test_read_limit_factor() -> None:
    assert JOBMANAGER.limit_factor.key == FACTOR
    assert read_limit_factor({}, JOBMANAGER) == 1.0
    assert read_limit_factor({FACTOR: "1"}, JOBMANAGER) == 1.0
    assert read_limit_factor({FACTOR: " 2.5 "}, JOBMANAGER) == 2.5


def test_container_memory_dict_and_bytes() -> None:
    sizes = sized(2628430511, "1.5")
    assert sizes.to_dict() == {
        "limitFactor": 1.5,
        "flinkRequest": "2506Mi",
        "flinkLimit": "3759Mi",
        "request": "2507Mi",
        "limit": "3761Mi",
    }
    assert sizes.request_bytes == 2507 * MIB
    assert sizes.limit_bytes == 3761 * MIB  # 2628430511 * 1.5 B is 3760 MiB and 6.5 bytes
