"""Verified vectors: configurations with the answer real Flink gives on each release line.

Sources: the project's memory-model notes (worked examples of section 5.9, the C-series and `-D`
checks of Appendix B, the legacy-heap cases a string map can express, the Kubernetes sizing table
of section 11) and the scenarios of Flink's own unit tests (JobManagerProcessUtilsTest,
ProcessMemoryUtilsTestBase, MemorySizeTest). YAML-typing and file-format cases are left out, except
where a YAML value reaches Flink as a string with the same meaning (e.g. an int as its digits).
Failures are named by the notes' failure ids (E1..E16; INT = `jobmanager.heap.mb` not an int).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

__all__ = [
    "ALL_KEYS",
    "FAILURE_TEXT",
    "VECTORS",
    "Fails",
    "Kubernetes",
    "Ok",
    "Record",
    "SpecVector",
    "spec_vectors",
    "version_line",
]

Record: TypeAlias = dict[str, Any]

KIB: Final = 1 << 10
MIB: Final = 1 << 20
GIB: Final = 1 << 30
TIB: Final = 1 << 40
LONG_MAX: Final = (1 << 63) - 1

PROCESS: Final = "jobmanager.memory.process.size"
FLINK: Final = "jobmanager.memory.flink.size"
HEAP: Final = "jobmanager.memory.heap.size"
OFF_HEAP: Final = "jobmanager.memory.off-heap.size"
DIRECT_LIMIT: Final = "jobmanager.memory.enable-jvm-direct-memory-limit"
METASPACE: Final = "jobmanager.memory.jvm-metaspace.size"
OVERHEAD_MIN: Final = "jobmanager.memory.jvm-overhead.min"
OVERHEAD_MAX: Final = "jobmanager.memory.jvm-overhead.max"
FRACTION: Final = "jobmanager.memory.jvm-overhead.fraction"
LEGACY_HEAP: Final = "jobmanager.heap.size"
LEGACY_HEAP_MB: Final = "jobmanager.heap.mb"
LIMIT_FACTOR: Final = "kubernetes.jobmanager.memory.limit-factor"

MEMORY_KEYS: Final = (PROCESS, FLINK, HEAP, OFF_HEAP, METASPACE, OVERHEAD_MIN, OVERHEAD_MAX)
ALL_KEYS: Final = (*MEMORY_KEYS, DIRECT_LIMIT, FRACTION, LEGACY_HEAP, LEGACY_HEAP_MB, LIMIT_FACTOR)

DEFAULT_OFF_HEAP: Final = 128 * MIB
DEFAULT_METASPACE: Final = 256 * MIB
DEFAULT_OVERHEAD_MIN: Final = 192 * MIB
DEFAULT_OVERHEAD_MAX: Final = GIB


# What each failure id looks like in the harness's error chain (2.3.0 wording; 1.x prefixes the
# IllegalConfigurationExceptions with "JobManager memory configuration failed: ").
FAILURE_TEXT: Final[dict[str, str]] = {
    "E1": "need to be configured explicitly",
    "E2": "Sum of configured JVM Metaspace",
    "E3": "is less than the configured Off-heap Memory",
    "E4": "does not match the configured Total Flink Memory",
    "E5": "exceeds the configured Total Flink Memory",
    "E6": "Inconsistently configured",
    "E7": "is not in configured JVM Overhead range",
    "E9": "is less than the sum of the derived Total Flink Memory",
    "E10": "Cannot read memory size from config option",
    "E11": "for key 'jobmanager.memory.jvm-overhead.fraction'",
    "E12": "Unrecognized option for boolean",
    "E13": "java.lang.ArithmeticException: long overflow",
    "E16": "must not be less than 0",
    "INT": "for key 'jobmanager.heap.mb'",
}


def version_line(version: str) -> str:
    """`1.20.3` -> `1.20`."""
    return ".".join(version.split(".")[:2])


# ==================================================================================================
# Verified vectors


@dataclass(frozen=True)
class Ok:
    """A successful resolution; fields left None are not asserted."""

    heap: int | None = None
    off_heap: int | None = None
    metaspace: int | None = None
    overhead: int | None = None
    total_flink: int | None = None
    total_process: int | None = None
    direct_limit: bool = False
    heap_warning: bool | None = None
    overhead_between: tuple[int, int] | None = None
    # The overhead equals the total process size times this Float option text (Flink's `multiply`).
    overhead_fraction_of_total: str | None = None


@dataclass(frozen=True)
class Fails:
    """A refusal, by the failure id of the memory-model notes (E1..E16, or INT for `heap.mb`)."""

    rule: str


@dataclass(frozen=True)
class Kubernetes:
    """Pod memory in MiB as the native Kubernetes client sets it; limit None = factor rejected."""

    request: int
    limit: int | None


Outcome: TypeAlias = Ok | Fails | None


@dataclass(frozen=True)
class SpecVector:
    """One verified configuration, with what real Flink answers on each release line."""

    id: str
    config: Mapping[str, str]
    expect_1x: Outcome
    expect_2x: Outcome
    mode: str = "standalone"
    source: str = ""
    k8s_1x: Kubernetes | None = None
    k8s_2x: Kubernetes | None = None

    def record(self) -> Record:
        return {"id": self.id, "config": dict(self.config), "mode": self.mode}

    def expected(self, version: str) -> Outcome:
        return self.expect_1x if version.startswith("1.") else self.expect_2x

    def expected_k8s(self, version: str) -> Kubernetes | None:
        return self.k8s_1x if version.startswith("1.") else self.k8s_2x


class _Same(enum.Enum):
    """Marks a 1.x expectation that equals the 2.x one."""

    SAME = "same"


SAME: Final = _Same.SAME


def _vector(
    vector_id: str,
    config: Mapping[str, str],
    expect: Outcome,
    *,
    expect_1x: Outcome | _Same = SAME,
    mode: str = "standalone",
    source: str,
    k8s: Kubernetes | None = None,
    k8s_1x: Kubernetes | _Same | None = SAME,
) -> SpecVector:
    return SpecVector(
        id=vector_id,
        config=config,
        expect_1x=expect if isinstance(expect_1x, _Same) else expect_1x,
        expect_2x=expect,
        mode=mode,
        source=source,
        k8s_1x=k8s if isinstance(k8s_1x, _Same) else k8s_1x,
        k8s_2x=k8s,
    )


def _ok(heap: int, overhead: int, *, meta: int = DEFAULT_METASPACE, off: int = DEFAULT_OFF_HEAP, **kw: Any) -> Ok:
    return Ok(heap=heap, off_heap=off, metaspace=meta, overhead=overhead, **kw)


def _m(mebibytes: int) -> int:
    return mebibytes * MIB


C01: Final = _ok(1073741824, 201326592)
C02: Final = _ok(1530082096, 214748368)
C09_OK: Final = _ok(1073741824, 201326592)


def _appendix_b() -> list[SpecVector]:
    src = "memory model, Appendix B"
    p, f, h = PROCESS, FLINK, HEAP
    rows: list[tuple[str, dict[str, str], Outcome]] = [
        ("C01", {p: "1600m"}, C01),
        ("C02", {p: "2g"}, C02),
        ("C03", {p: "4096m"}, _ok(3462817376, 429496736)),
        ("C04", {p: "1g"}, _ok(469762048, 201326592)),
        ("C05", {p: "3000m"}, _ok(2428502012, 314572804)),
        ("C06", {p: "20g"}, _ok(19998441472, 1073741824)),
        ("C07", {f: "1g"}, _ok(939524096, 201326592)),
        ("C08", {f: "2g"}, _ok(2013265920, 268435460)),
        ("C09", {h: "1g"}, _ok(1073741824, 201326592)),
        ("C10", {h: "1g", f: "1280m"}, _ok(1073741824, 201326592, off=268435456)),
        ("C11", {h: "512m", OFF_HEAP: "64m"}, _ok(536870912, 201326592, off=67108864)),
        ("C12", {h: "1g", p: "1600m"}, C01),
        ("C13", {f: "1g", p: "1600m"}, _ok(939524096, 335544320)),
        ("C14", {p: "2g", FRACTION: "0.25"}, _ok(1207959552, 536870912)),
        ("C15", {p: "2g", FRACTION: "0", OVERHEAD_MIN: "0m"}, _ok(1744830464, 0)),
        ("C16", {p: "2g", OVERHEAD_MIN: "300m", OVERHEAD_MAX: "300m"}, _ok(1430257664, 314572800)),
        ("C17", {p: "1600m", DIRECT_LIMIT: "true"}, _ok(1073741824, 201326592, direct_limit=True)),
        ("C18", {p: "1600m", DIRECT_LIMIT: "TRUE"}, _ok(1073741824, 201326592, direct_limit=True)),
        ("C19", {p: "1600m", METASPACE: "128m"}, _ok(1207959552, 201326592, meta=134217728)),
        ("C20", {p: "  1600 MB  "}, C01),
        ("C21", {p: "1677721600"}, C01),
        ("C22", {p: "2g"}, C02),
        ("C23", {p: "1600m", FRACTION: "1e-1"}, C01),
        ("C24", {p: "3000m", FRACTION: "0.3f"}, _ok(1799356379, 943718437)),
        ("C25", {h: "50m"}, _ok(52428800, 201326592, heap_warning=True)),
        ("C26", {p: "1601m"}, _ok(1074790400, 201326592)),
        ("C27", {p: "2500001k"}, _ok(1901347734, 256000106)),
        ("C28", {f: "1g", FRACTION: "0.5"}, _ok(939524096, 1073741824)),
        ("C29", {p: "100t"}, _ok(109949686382592, 1073741824)),
        ("C30", {p: "3000m", FRACTION: "-0.0"}, _ok(2541748224, 201326592)),
        ("C31", {}, Fails("E1")),
        ("C32", {p: "100m"}, Fails("E2")),
        ("C33", {p: "500m"}, Fails("E3")),
        ("C34", {p: "576m"}, Fails("E3")),
        ("C35", {p: "577m"}, _ok(1048576, 201326592, heap_warning=True)),
        ("C36", {h: "100m", f: "199m", OFF_HEAP: "100m"}, Fails("E4")),
        ("C37", {h: "150m", f: "100m"}, Fails("E5")),
        ("C38", {p: "1600m", OVERHEAD_MIN: "200m", OVERHEAD_MAX: "50m"}, Fails("E6")),
        ("C39", {p: "1600m", FRACTION: "1.0"}, Fails("E6")),
        ("C40", {p: "1600m", FRACTION: "-0.1"}, Fails("E6")),
        (
            "C41",
            {p: "1000m", f: "800m", METASPACE: "100m", OVERHEAD_MIN: "150m", OVERHEAD_MAX: "200m", FRACTION: "0.5"},
            Fails("E7"),
        ),
        ("C42", {p: "699m", f: "500m", METASPACE: "100m", OVERHEAD_MIN: "100m", OVERHEAD_MAX: "100m"}, Fails("E7")),
        ("C43", {f: "1g", p: "1200m"}, Fails("E9")),
        ("C44", {p: "1.5g"}, Fails("E10")),
        ("C45", {p: "abc"}, Fails("E10")),
        ("C46", {p: "-1g"}, Fails("E10")),
        ("C47", {p: "1600mib"}, Fails("E10")),
        ("C48", {p: "99999999999t"}, Fails("E10")),
        ("C49", {p: "1600m", DIRECT_LIMIT: "yes"}, Fails("E12")),
        ("C50", {p: "1600m", FRACTION: "abc"}, Fails("E11")),
        ("C51", {h: "1g", p: "1300m"}, Fails("E9")),
        ("C52", {f: "100m"}, Fails("E3")),
        ("C53", {f: "128m"}, Fails("E3")),
        ("C57", {p: "2g"}, C02),  # nested YAML keys, flattened
        ("C58", {f: "1000t", FRACTION: "0.9999999"}, Fails("E13")),
        ("C59", {h: "8388607t"}, _ok(9223370937343148032, 1073741824)),
        ("C60", {p: "8388607t"}, _ok(9223370935866753024, 1073741824)),
        ("C61", {h: "1g", p: "1600m", FRACTION: "0.1"}, C01),
        ("C62", {p: "1600m", OFF_HEAP: "0"}, _ok(1207959552, 201326592, off=0)),
        (
            "C63",
            {p: "1600m", METASPACE: "0", OVERHEAD_MAX: "0", OVERHEAD_MIN: "0"},
            _ok(1543503872, 0, meta=0),
        ),
        ("C64", {h: "1g", OFF_HEAP: "100m", f: "1124m"}, _ok(1073741824, 201326592, off=104857600)),
        ("C65", {p: "1600m", FRACTION: ".inf"}, Fails("E11")),  # as a string: not a Java float
        ("C66", {p: "1600m", FRACTION: "NaN"}, Fails("E6")),
        ("C68", {p: "4294967296"}, _ok(3462817376, 429496736)),  # YAML 0x100000000 reaches Flink as its int
        ("C69", {p: "1600m", DIRECT_LIMIT: "TRUE"}, _ok(1073741824, 201326592, direct_limit=True)),
        ("C70", {p: "1600m", DIRECT_LIMIT: "1"}, Fails("E12")),
        ("C71", {p: "1600m", FRACTION: "0x1p-3"}, _ok(1065353216, 209715200)),
        ("C72", {p: "1600m", FRACTION: " 0.2 "}, _ok(939524091, 335544325)),
        ("C73", {p: "0"}, Fails("E2")),
        ("C74", {h: "0"}, _ok(0, 201326592, heap_warning=True)),
        ("C75", {p: "1600m", FRACTION: "1e-1"}, C01),
        ("C77", {p: "1600m", FRACTION: "1e-50"}, C01),
        ("C78", {p: "1600 m"}, C01),
        ("C79", {p: "+1600m"}, Fails("E10")),
        ("C80", {p: "1600 m b"}, Fails("E10")),
        # The additional -D checks.
        ("D01", {p: ""}, Fails("E10")),
        ("D02", {p: "   "}, Fails("E10")),
        ("D03", {p: "1600"}, Fails("E2")),
        ("D04", {"JobManager.Memory.Process.Size": "2g"}, Fails("E1")),
        ("D05", {p: "1\u212a"}, Fails("E2")),  # Kelvin sign lower-cases to k: 1024 bytes
    ]
    vectors = [_vector(name, config, outcome, source=src) for name, config, outcome in rows]
    # The legacy keys: 1.20.3 maps them (BashJavaUtils: onto the heap), 2.3.0 ignores them.
    vectors += [
        _vector("C54", {LEGACY_HEAP: "1g"}, Fails("E1"), expect_1x=_ok(1073741824, 201326592), source=src),
        _vector("C55", {LEGACY_HEAP_MB: "1024"}, Fails("E1"), expect_1x=_ok(1073741824, 201326592), source=src),
        _vector("L01", {LEGACY_HEAP: "1g", p: "1600m"}, C01, expect_1x=_ok(1073741824, 201326592), source=src),
        _vector("L02", {LEGACY_HEAP: "2g", p: "1600m"}, C01, expect_1x=Fails("E9"), source=src),
        _vector("L03", {LEGACY_HEAP_MB: "-1"}, Fails("E1"), expect_1x=Fails("E16"), source=src),
        _vector("L06", {LEGACY_HEAP: "1g", h: "512m"}, _ok(536870912, 201326592), source=src),
        _vector("L07", {LEGACY_HEAP: "1g", LEGACY_HEAP_MB: "2048"}, Fails("E1"), expect_1x=C09_OK, source=src),
        _vector("L11", {p: '"1600m"'}, Fails("E10"), source=src),
        _vector("L14", {LEGACY_HEAP_MB: "1024m"}, Fails("E1"), expect_1x=Fails("INT"), source=src),
        _vector(
            "L15",
            {LEGACY_HEAP: "1024"},
            Fails("E1"),
            expect_1x=_ok(1024, 201326592, heap_warning=True),
            source=src,
        ),
    ]
    return vectors


def _worked_examples() -> list[SpecVector]:
    src = "memory model, section 5.9"
    rows: list[tuple[str, dict[str, str], int, int, int]] = [
        ("W01", {PROCESS: "1600m"}, 1073741824, 201326592, 1677721600),
        ("W02", {PROCESS: "2g"}, 1530082096, 214748368, 2147483648),
        ("W03", {PROCESS: "3000m"}, 2428502012, 314572804, 3145728000),
        # The notes' table prints 1476395008 and 2550136832 as the totals of W04/W05: heap + off-heap
        # + metaspace + off-heap, against its own overhead column and the 1472Mi pod of section 11.
        ("W04", {FLINK: "1g"}, 939524096, 201326592, 1543503872),
        ("W05", {FLINK: "2g"}, 2013265920, 268435460, 2684354564),
        ("W06", {FLINK: "2000m"}, 1962934272, 262843055, 2628430511),
    ]
    return [
        _vector(
            name,
            config,
            _ok(heap, overhead, total_process=total, total_flink=heap + DEFAULT_OFF_HEAP),
            mode="native",
            source=src,
        )
        for name, config, heap, overhead, total in rows
    ]


def _kubernetes_table() -> list[SpecVector]:
    src = "memory model, section 11"
    p = PROCESS

    def k(request: int, limit: int | None = -1) -> Kubernetes:
        return Kubernetes(request, request if limit == -1 else limit)

    rows: list[tuple[str, dict[str, str], Outcome, Kubernetes]] = [
        ("K01", {p: "1600m"}, C01, k(1600)),
        ("K02", {p: "1600m", LIMIT_FACTOR: "1.5"}, C01, k(1600, 2400)),
        ("K03", {FLINK: "1g"}, _ok(939524096, 201326592), k(1472)),
        ("K04", {HEAP: "1g"}, C09_OK, k(1600)),
        ("K05", {HEAP: "3000m"}, Ok(heap=_m(3000)), k(3760)),  # overhead "376m" is rounded in the notes
        ("K06", {FLINK: "2000m"}, Ok(heap=1962934272, total_process=2628430511), k(2506)),
        ("K07", {p: "1000000001"}, Ok(total_process=1000000001), k(953)),
        ("K08", {p: "3000m", LIMIT_FACTOR: "1.33"}, Ok(total_process=_m(3000)), k(3000, 3990)),
        ("K09", {p: "2047m", LIMIT_FACTOR: "1.001"}, Ok(total_process=_m(2047)), k(2047, 2049)),
        ("K10", {p: "1600m", LIMIT_FACTOR: "1e10"}, C01, k(1600, 2147483647)),
        ("K11", {p: "4096t"}, Ok(total_process=4096 * TIB), k(0)),
        ("K12", {p: "1600m", LIMIT_FACTOR: "0.5"}, C01, k(1600, None)),
        ("K13", {p: "1600m", LIMIT_FACTOR: "NaN"}, C01, k(1600, None)),
    ]
    vectors = [
        _vector(name, config, outcome, mode="native", source=src, k8s=kube) for name, config, outcome, kube in rows
    ]
    # 1.20.3's client maps the legacy keys onto the *total process* size; 2.3.0 ignores them.
    vectors += [
        _vector(
            "K14",
            {LEGACY_HEAP: "1g"},
            Fails("E1"),
            expect_1x=Ok(total_process=GIB, heap=469762048),
            mode="native",
            source=src,
            k8s=None,
            k8s_1x=k(1024),
        ),
        _vector(
            "K15",
            {LEGACY_HEAP_MB: "2000"},
            Fails("E1"),
            expect_1x=Ok(total_process=_m(2000)),
            mode="native",
            source=src,
            k8s=None,
            k8s_1x=k(2000),
        ),
        _vector(
            "K16",
            {HEAP: "1g", LEGACY_HEAP: "2g"},
            C09_OK,
            expect_1x=Ok(heap=GIB, total_process=2 * GIB),
            mode="native",
            source=src,
            k8s=k(1600),
            k8s_1x=k(2048),
        ),
    ]
    return vectors


def _flink_unit_tests() -> list[SpecVector]:
    """Scenarios of JobManagerProcessUtilsTest and ProcessMemoryUtilsTestBase (JM configurations)."""
    jmpu = "Flink JobManagerProcessUtilsTest"
    pmu = "Flink ProcessMemoryUtilsTestBase"
    vectors = [
        _vector(
            "JMPU-dynamic-configs",
            {HEAP: "1m", OFF_HEAP: "2m", METASPACE: "3m", OVERHEAD_MIN: "4m", OVERHEAD_MAX: "5m"},
            _ok(_m(1), _m(4), off=_m(2), meta=_m(3), heap_warning=True),
            source=jmpu,
        ),
        _vector("JMPU-heap", {HEAP: "50m"}, Ok(heap=_m(50), heap_warning=True), source=jmpu),
        _vector("JMPU-off-heap-with-heap", {OFF_HEAP: "100m", HEAP: "1152m"}, Ok(off_heap=_m(100)), source=jmpu),
        _vector("JMPU-off-heap-with-flink", {OFF_HEAP: "100m", FLINK: "1280m"}, Ok(off_heap=_m(100)), source=jmpu),
        _vector("JMPU-off-heap-with-process", {OFF_HEAP: "100m", PROCESS: "1536m"}, Ok(off_heap=_m(100)), source=jmpu),
        _vector("JMPU-add-up-failure", {FLINK: "199m", HEAP: "100m", OFF_HEAP: "100m"}, Fails("E4"), source=jmpu),
        _vector("JMPU-heap-exceeds-flink", {FLINK: "100m", HEAP: "150m"}, Fails("E5"), source=jmpu),
        _vector(
            "JMPU-off-heap-derived",
            {HEAP: "150m", FLINK: f"{150 + 228}m"},
            Ok(heap=_m(150), off_heap=_m(228)),
            source=jmpu,
        ),
        _vector(
            "JMPU-fine-grained",
            {FLINK: "200m", OFF_HEAP: "50m", HEAP: "150m"},
            Ok(heap=_m(150), off_heap=_m(50)),
            source=jmpu,
        ),
        _vector("PMU-total-flink", {FLINK: "1g"}, Ok(total_flink=GIB), source=pmu),
        _vector("PMU-total-process", {PROCESS: "2g"}, Ok(total_process=2 * GIB), source=pmu),
        _vector("PMU-required-options", {}, Fails("E1"), source=pmu),
        _vector(
            "PMU-process-exceeded-fine-grained",
            {METASPACE: "100m", PROCESS: "200m", HEAP: "75m", OFF_HEAP: "75m"},
            Fails("E9"),
            source=pmu,
        ),
        _vector(
            "PMU-process-exceeded-flink",
            {METASPACE: "100m", PROCESS: "200m", FLINK: "150m"},
            Fails("E9"),
            source=pmu,
        ),
        _vector(
            "PMU-overhead-from-process-and-flink",
            {
                PROCESS: "1000m",
                FLINK: "800m",
                METASPACE: "100m",
                OVERHEAD_MIN: "50m",
                OVERHEAD_MAX: "200m",
                FRACTION: "0.5",
            },
            Ok(overhead=_m(100)),
            source=pmu,
        ),
        _vector(
            "PMU-overhead-from-process-and-flink-failure",
            {
                PROCESS: "1000m",
                FLINK: "800m",
                METASPACE: "100m",
                OVERHEAD_MIN: "150m",
                OVERHEAD_MAX: "200m",
                FRACTION: "0.5",
            },
            Fails("E7"),
            source=pmu,
        ),
        _vector(
            "PMU-process-add-up-failure",
            {PROCESS: "699m", FLINK: "500m", METASPACE: "100m", OVERHEAD_MIN: "100m", OVERHEAD_MAX: "100m"},
            Fails("E7"),
            source=pmu,
        ),
        _vector("PMU-legacy-heap-size", {LEGACY_HEAP: "1g"}, Fails("E1"), expect_1x=Ok(heap=GIB), source=pmu),
        _vector("PMU-legacy-heap-mb", {LEGACY_HEAP_MB: "1024"}, Fails("E1"), expect_1x=Ok(heap=GIB), source=pmu),
        _vector("PMU-legacy-and-new", {HEAP: "1g", LEGACY_HEAP: "2g"}, Ok(heap=GIB), source=pmu),
        _vector(
            "PMU-legacy-and-new-process",
            {PROCESS: "1g", LEGACY_HEAP: "2g"},
            Ok(total_process=GIB),
            mode="native",
            source=pmu,
        ),
        _vector(
            "PMU-legacy-heap-size-native",
            {LEGACY_HEAP: "1g"},
            Fails("E1"),
            expect_1x=Ok(total_process=GIB),
            mode="native",
            source=pmu,
        ),
    ]
    # The four JobManager configurations the base test runs most checks with.
    shapes: dict[str, dict[str, str]] = {
        "heap": {HEAP: "1152m"},
        "flink": {FLINK: "1280m"},
        "flink+heap": {FLINK: "1280m", HEAP: "1152m"},
        "process": {PROCESS: "1536m"},
    }
    for name, base in shapes.items():
        vectors += [
            _vector(
                f"PMU-jvm-parameters-{name}",
                {**base, DIRECT_LIMIT: "true"},
                Ok(direct_limit=True),
                source=pmu,
            ),
            _vector(f"PMU-jvm-parameters-no-limit-{name}", dict(base), Ok(direct_limit=False), source=pmu),
            _vector(f"PMU-metaspace-{name}", {**base, METASPACE: "50m"}, Ok(metaspace=_m(50)), source=pmu),
            _vector(
                f"PMU-overhead-range-{name}",
                {**base, OVERHEAD_MIN: "50m", OVERHEAD_MAX: "200m"},
                Ok(overhead_between=(_m(50), _m(200))),
                source=pmu,
            ),
            _vector(
                f"PMU-overhead-range-failure-{name}",
                {**base, OVERHEAD_MIN: "200m", OVERHEAD_MAX: "50m"},
                Fails("E6"),
                source=pmu,
            ),
            _vector(
                f"PMU-overhead-fraction-{name}",
                {**base, OVERHEAD_MIN: "0", OVERHEAD_MAX: "1t", FRACTION: "0.2"},
                Ok(overhead_fraction_of_total="0.2"),
                source=pmu,
            ),
            _vector(f"PMU-fraction-negative-{name}", {**base, FRACTION: "-0.1"}, Fails("E6"), source=pmu),
            _vector(f"PMU-fraction-one-{name}", {**base, FRACTION: "1.0"}, Fails("E6"), source=pmu),
        ]
    return vectors


def _memory_size_tests() -> list[SpecVector]:
    """MemorySizeTest spellings, as the heap size (valid ones resolve with a warning-free heap)."""
    src = "Flink MemorySizeTest"
    valid = {
        "1234": 1234,
        "1234b": 1234,
        "1234 b": 1234,
        "1234bytes": 1234,
        "1234 bytes": 1234,
        "667766k": 667766 * KIB,
        "667766 kb": 667766 * KIB,
        "667766kibibytes": 667766 * KIB,
        "7657623m": 7657623 * MIB,
        "7657623 mb": 7657623 * MIB,
        "7657623 mebibytes": 7657623 * MIB,
        "37463g": 37463 * GIB,
        "37463 gb": 37463 * GIB,
        "37463gibibytes": 37463 * GIB,
        "1234t": 1234 * TIB,
        "1234 tb": 1234 * TIB,
        "1234tebibytes": 1234 * TIB,
        "1 B": 1,
        "1 K": KIB,
        "1 M": MIB,
        "1 G": GIB,
        "1 T": TIB,
        "      155      ": 155,
        "      155      bytes   ": 155,
    }
    invalid = ["", "     ", "foobar or fubar or foo bazz", "16 gjah", "16 16 17 18 bytes", "-100 bytes"]
    overflow = ["100000000000000000000000000000000 bytes", "100000000000000 tb"]
    vectors = [
        _vector(f"MST-valid-{index:02d}", {HEAP: text}, Ok(heap=size), source=src)
        for index, (text, size) in enumerate(valid.items())
    ]
    vectors += [
        _vector(f"MST-invalid-{index:02d}", {HEAP: text}, Fails("E10"), source=src)
        for index, text in enumerate(invalid + overflow)
    ]
    return vectors


VECTORS: Final[tuple[SpecVector, ...]] = (
    *_worked_examples(),
    *_appendix_b(),
    *_kubernetes_table(),
    *_flink_unit_tests(),
    *_memory_size_tests(),
)


def spec_vectors() -> list[Record]:
    """Every verified vector as a batch-input record (ids are the vector ids); plus a native-mode twin
    of each standalone vector (id suffix `@native`), since the two modes differ only for legacy keys."""
    records: list[Record] = []
    for vector in VECTORS:
        records.append(vector.record())
        if vector.mode == "standalone":
            records.append({**vector.record(), "id": f"{vector.id}@native", "mode": "native"})
    return records
