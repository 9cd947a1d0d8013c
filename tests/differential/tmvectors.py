"""TaskManager configurations with the answer real Flink gives on each release line.

Two sets:
- `VECTORS`: every row of section 12 of the TaskManager notes (V01-V33, E01-E20), produced by the
  real Flink 2.3.0 and 1.20.3 classes, with every number.
- `SCENARIOS`: the situations Flink's own TaskExecutorProcessUtilsTest and ProcessMemoryUtilsTestBase
  exercise (each custom setting on top of the five base configurations those tests use: task heap
  100m with managed 200m, total Flink 1280m, total Flink with task heap, total Flink with managed,
  total process 1536m), written as batch records with the outcome those tests state.

Keys are written in full. Records are in flinkmem's batch-input format with `"role": "taskmanager"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeAlias

__all__ = [
    "SCENARIOS",
    "VECTORS",
    "Scenario",
    "TmFails",
    "TmOk",
    "TmVector",
    "scenario_records",
    "vector_records",
]

Record: TypeAlias = dict[str, Any]

T: Final = "taskmanager.memory."
P, F = T + "process.size", T + "flink.size"
TH, TO = T + "task.heap.size", T + "task.off-heap.size"
FH, FO = T + "framework.heap.size", T + "framework.off-heap.size"
MAN, MF = T + "managed.size", T + "managed.fraction"
NMIN, NMAX, NF = T + "network.min", T + "network.max", T + "network.fraction"
META, OMIN, OMAX, OF = (
    T + "jvm-metaspace.size",
    T + "jvm-overhead.min",
    T + "jvm-overhead.max",
    T + "jvm-overhead.fraction",
)
SEGMENT = T + "segment-size"
SLOTS, CPU, K8S_CPU = "taskmanager.numberOfTaskSlots", "taskmanager.cpu.cores", "kubernetes.taskmanager.cpu.amount"
LEGACY, LEGACY_MB, BUFFERS = "taskmanager.heap.size", "taskmanager.heap.mb", "taskmanager.network.numberOfBuffers"
OLD_MANAGED = "taskmanager.memory.size"
OLD_NMIN, OLD_NMAX, OLD_NF = (
    "taskmanager.network.memory.min",
    "taskmanager.network.memory.max",
    ("taskmanager.network.memory.fraction"),
)

M128, M256 = 134217728, 268435456


@dataclass(frozen=True)
class TmOk:
    """Every component in bytes (totals, heap and direct memory follow), CPU, slots, pod MiB."""

    fh: int
    fo: int
    th: int
    to: int
    net: int
    man: int
    meta: int
    ovh: int
    cpu: float = 1.0
    slots: int = 1
    pod: int | None = None
    ext: tuple[tuple[str, int], ...] = ()

    @property
    def flink(self) -> int:
        return self.fh + self.fo + self.th + self.to + self.net + self.man

    @property
    def process(self) -> int:
        return self.flink + self.meta + self.ovh

    @property
    def heap(self) -> int:
        return self.fh + self.th

    @property
    def direct(self) -> int:
        return self.fo + self.to + self.net


@dataclass(frozen=True)
class TmFails:
    """A refusal: flinkmem's rule, and the exception class and a text Flink's error chain contains."""

    rule: str
    java: str
    text: str = ""


ICE: Final = "org.apache.flink.configuration.IllegalConfigurationException"
IAE: Final = "java.lang.IllegalArgumentException"
Outcome: TypeAlias = TmOk | TmFails


@dataclass(frozen=True)
class TmVector:
    id: str
    mode: str
    config: Mapping[str, str]
    v2: Outcome
    v1: Outcome | None = None  # None: the same as 2.3.0

    def expected(self, version: str) -> Outcome:
        return self.v2 if version.startswith("2.") or self.v1 is None else self.v1

    def record(self) -> Record:
        return {"id": f"tm-vector/{self.id}", "role": "taskmanager", "mode": self.mode, "config": dict(self.config)}


def _s(vector_id: str, config: Mapping[str, str], v2: Outcome, v1: Outcome | None = None) -> TmVector:
    return TmVector(vector_id, "standalone", config, v2, v1)


def _n(vector_id: str, config: Mapping[str, str], v2: Outcome, v1: Outcome | None = None) -> TmVector:
    return TmVector(vector_id, "native", config, v2, v1)


V02: Final = TmOk(M128, M128, 1530082070, 0, 359703515, 1438814063, M256, 429496736)
V03: Final = TmOk(M128, M128, 7650410378, 0, 1583769214, 6335076856, M256, 1073741824)
V07: Final = TmOk(M128, M128, 402653174, 0, 134217730, 536870920, M256, 201326592)
NO_PATH: Final = TmFails("no-sizing-option", ICE, "need to be configured explicitly")

VECTORS: Final[tuple[TmVector, ...]] = (
    _s("V01", {P: "1728m"}, V07),
    _s("V02", {P: "4g"}, V02),
    _s("V03", {P: "16g"}, V03),
    _s(
        "V04",
        {P: "32g", MF: "0.6", TO: "512m", META: "512m", SLOTS: "8"},
        TmOk(M128, M128, 9019430493, 536870912, 3274912612, 19649476159, 536870912, 1073741824, 8.0, 8),
    ),
    _s("V05", {P: "4g", MF: "0"}, TmOk(M128, M128, 2968896133, 0, 359703515, 0, M256, 429496736)),
    _s("V06", {P: "2g", FH: "0", OF: "0.25"}, TmOk(0, M128, 536870902, 0, 134217730, 536870920, M256, 536870912)),
    _s("V07", {F: "1280m"}, V07),
    _s("V08", {F: "4g"}, TmOk(M128, M128, 1879048160, 0, 429496736, 1717986944, M256, 507044758)),
    _s("V09", {TH: "100m", MAN: "200m"}, TmOk(M128, M128, 104857600, 0, 67108864, 209715200, M256, 201326592)),
    _s(
        "V10",
        {TH: "2g", MAN: "2g", NF: "0.2"},
        TmOk(M128, M128, 2147483648, 0, 1140850709, 2147483648, M256, 663632112),
    ),
    _s(
        "V11",
        {TH: "100m", MAN: "200m", F: "1280m"},
        TmOk(M128, M128, 104857600, 0, 759169024, 209715200, M256, 201326592),
    ),
    _s(
        "V12",
        {TH: "1g", MAN: "1g", P: "4g"},
        TmFails("derived-overhead-out-of-range", ICE, "Derived JVM Overhead size (1.250gb (1342177276 bytes))"),
    ),
    _s("V13", {F: "1280m", TH: "100m"}, TmOk(M128, M128, 104857600, 0, 432013304, 536870920, M256, 201326592)),
    _s("V14", {P: "4g", TH: "1g"}, TmOk(M128, M128, 1073741824, 0, 816043761, 1438814063, M256, 429496736)),
    _s("V15", {P: "4g", MAN: "1g"}, TmOk(M128, M128, 1895154309, 0, 359703515, 1073741824, M256, 429496736)),
    _s("V16", {F: "2g", P: "2600m"}, TmOk(M128, M128, 805306352, 0, 214748368, 858993472, M256, 310378496)),
    _s(
        "V17",
        {P: "8g", NMIN: "1g", NMAX: "1g"},
        TmOk(M128, M128, 3135326074, 0, 1073741824, 2985002310, M256, 858993472),
    ),
    _s("V18", {P: "8g", NMAX: "64m"}, TmOk(M128, M128, 4141959034, 0, 67108864, 2985002310, M256, 858993472)),
    _s("V19", {P: "2g", NMIN: "512m"}, TmOk(M128, M128, 193273517, 0, 536870912, 665719939, M256, 214748368)),
    _s(
        "V20",
        {P: "4g", OLD_MANAGED: "1g", OLD_NMIN: "1g"},
        TmOk(M128, M128, 1181116000, 0, 1073741824, 1073741824, M256, 429496736),
    ),
    _s("V21", {P: "4g", SLOTS: "4"}, replace(V02, cpu=4.0, slots=4)),
    _s("V22", {P: "4g", CPU: "0.000000001"}, replace(V02, cpu=0.0)),
    _s(
        "V23",
        {P: "4g", "external-resources": "gpu", "external-resource.gpu.amount": "1"},
        replace(V02, ext=(("gpu", 1),)),
    ),
    _s("V24", {LEGACY: "1g"}, NO_PATH, TmOk(M128, M128, 268435448, 0, 107374184, 429496736, M256, 201326592)),
    _n(
        "V25",
        {LEGACY: "1g"},
        NO_PATH,
        TmOk(M128, M128, 26843542, 0, 67108864, 241591914, M256, 201326592, pod=1024),
    ),
    _s(
        "V26",
        {LEGACY: "1g", P: "1536m"},
        TmOk(M128, M128, 301989880, 0, 114085070, 456340282, M256, 201326592),
        TmOk(M128, M128, 268435448, 0, 107374184, 429496736, M256, 268435456),
    ),
    _s(
        "V27",
        {P: "4g", BUFFERS: "4096"},
        V02,
        TmOk(M128, M128, 1755567857, 0, 134217728, 1438814063, M256, 429496736),
    ),
    _n("V28", {P: "4g"}, replace(V02, pod=4096)),
    _n(
        "V29",
        {P: "3g", OF: "0.25"},
        TmOk(M128, M128, 805306352, 0, 214748368, 858993472, M256, 805306367, pod=3071),
    ),
    _n(
        "V30",
        {F: "2g", P: "2600m"},
        TmOk(M128, M128, 805306352, 0, 214748368, 858993472, M256, 268435460, pod=2560),
    ),
    _n("V31", {P: "16g", SLOTS: "4", K8S_CPU: "2.5"}, replace(V03, cpu=2.5, slots=4, pod=16384)),
    _n(
        "V32",
        {P: "4g", CPU: "0.000000001"},
        TmFails("cpu-cores-not-positive", ICE, "positive number of CPU cores"),
    ),
    _s(
        "V33",
        {P: "9223372036854775807"},
        TmOk(M128, M128, 4611685948768386870, 0, 922337217295155203, 3689348869180620998, M256, 1073741824),
    ),
    _s("E01", {}, NO_PATH),
    _s("E02", {TH: "1g"}, NO_PATH),
    _s("E03", {P: "1.5g"}, TmFails("invalid-value", ICE, "Memory size unit '.5g' does not match")),
    _s(
        "E04",
        {P: "100m"},
        TmFails("metaspace-and-overhead-exceed-process", ICE, "Sum of configured JVM Metaspace (256.000mb"),
    ),
    _s("E05", {P: "600m"}, TmFails("no-room-for-task-heap", ICE, "Managed Memory (60.800mb (63753421 bytes))")),
    _s("E06", {P: "4g", MF: "0.6", NF: "0.6"}, TmFails("no-room-for-task-heap", ICE, "(2.010gb (2158221148 bytes))")),
    _s("E07", {P: "4g", MF: "1"}, TmFails("managed-fraction-out-of-range", ICE, "fraction must be in range [0, 1)")),
    _s(
        "E08",
        {P: "4g", NMIN: "512m", NMAX: "256m"},
        TmFails("network-range-inconsistent", ICE, "min value must be less or equal to max value"),
    ),
    _s(
        "E09",
        {F: "1280m", P: "1536m"},
        TmFails("derived-overhead-out-of-range", ICE, "Derived JVM Overhead size (0 bytes)"),
    ),
    _s(
        "E10",
        {TH: "100m", MAN: "200m", F: "1280m", NMAX: "256m"},
        TmFails("derived-network-out-of-range", ICE, "Derived Network Memory size (724.000mb (759169024 bytes))"),
    ),
    _s(
        "E11",
        {TH: "1g", MAN: "1g", F: "1g"},
        TmFails("fine-grained-exceeds-flink", ICE, "Task Heap Memory (1024.000mb"),
    ),
    _s("E12", {P: "4g", TH: "3g"}, TmFails("fine-grained-exceeds-flink", ICE, "Task Heap Memory (3.000gb")),
    _s("E13", {P: "4g", SLOTS: "0"}, TmFails("cpu-cores-not-positive", ICE, "positive number of CPU cores")),
    _n("E14", {P: "4g", SLOTS: "0", CPU: "2"}, TmFails("slots-not-positive", "java.lang.IllegalStateException")),
    _s("E14s", {P: "4g", SLOTS: "0", CPU: "2"}, replace(V02, cpu=2.0, slots=0)),
    _s("E15", {TH: "8388607t", MAN: "8388607t"}, TmFails("size-overflow", "java.lang.ArithmeticException", "overflow")),
    _s("E16", {P: "4g", MF: "abc"}, TmFails("invalid-value", IAE, 'For input string: "abc"')),
    _s("E17", {P: "4g", CPU: "NaN"}, TmFails("invalid-value", "java.lang.NumberFormatException", "Character N")),
    _n("E18", {P: "4g", K8S_CPU: "two", CPU: "2"}, TmFails("invalid-value", IAE, 'For input string: "two"')),
    _s(
        "E19",
        {P: "4g", BUFFERS: "1024", SEGMENT: "1000"},
        V02,
        TmFails("invalid-value", ICE, "Minimum memory segment size is 4096"),
    ),
    _s(
        "E20",
        {LEGACY_MB: "-1"},
        NO_PATH,
        TmFails("legacy-heap-invalid", ICE, "must not be less than 0"),
    ),
)


def vector_records() -> list[Record]:
    return [vector.record() for vector in VECTORS]


# ==================================================================================================
# Flink's own test scenarios


@dataclass(frozen=True)
class Scenario:
    """A custom setting over one base configuration, and whether Flink's tests say it resolves."""

    id: str
    config: Mapping[str, str]
    valid: bool
    # Fields of the harness answer that Flink's tests pin (e.g. {"taskHeap": 52428800}).
    pins: Mapping[str, int] = field(default_factory=dict)
    versions: tuple[str, ...] = ("1.", "2.")

    def record(self, mode: str) -> Record:
        return {"id": f"tm-scenario/{self.id}/{mode}", "role": "taskmanager", "mode": mode, "config": dict(self.config)}


MIB: Final = 1 << 20
BASES: Final[dict[str, dict[str, str]]] = {
    "fine-grained": {TH: "100m", MAN: "200m"},
    "flink": {F: "1280m"},
    "flink+task-heap": {F: "1280m", TH: "100m"},
    "flink+managed": {F: "1280m", MAN: "200m"},
    "process": {P: "1536m"},
}
ALL_BASES: Final = tuple(BASES)
WITHOUT_TASK_HEAP: Final = ("flink", "flink+managed", "process")
WITHOUT_MANAGED: Final = ("flink", "flink+task-heap", "process")


def _over(
    name: str,
    custom: Mapping[str, str],
    valid: bool,
    bases: tuple[str, ...] = ALL_BASES,
    pins: Mapping[str, int] | None = None,
) -> list[Scenario]:
    return [Scenario(f"{name}/{base}", {**BASES[base], **custom}, valid, pins or {}) for base in bases]


def _scenarios() -> list[Scenario]:
    rows: list[Scenario] = []
    # TaskExecutorProcessUtilsTest
    rows += _over("cpu-cores", {CPU: "1.0"}, True)
    rows += _over("cpu-from-slots", {SLOTS: "3"}, True)
    rows += _over("negative-cpu", {CPU: "-0.1"}, False)
    rows += _over("framework-heap", {FH: "100m"}, True, pins={"frameworkHeap": 100 * MIB})
    rows += _over("framework-off-heap", {FO: "10m"}, True, pins={"frameworkOffHeap": 10 * MIB})
    rows += _over("task-heap", {TH: "50m"}, True, WITHOUT_TASK_HEAP, {"taskHeap": 50 * MIB})
    rows += _over("task-off-heap", {TO: "50m"}, True, pins={"taskOffHeap": 50 * MIB})
    rows += _over("network-range", {NMIN: "200m", NMAX: "500m"}, True)
    rows += _over("network-range-failure", {NMIN: "200m", NMAX: "50m"}, False)
    rows += _over("network-fraction", {NMIN: "0", NMAX: "1t", NF: "0.2"}, True, ("fine-grained",))
    rows += _over("network-fraction-negative", {NF: "-0.1"}, False)
    rows += _over("network-fraction-one", {NF: "1.0"}, False)
    rows += _over("legacy-network-range", {OLD_NMIN: "200m", OLD_NMAX: "500m"}, True)
    rows += _over("legacy-network-fraction", {OLD_NMIN: "0m", OLD_NMAX: "1t", OLD_NF: "0.2"}, True, ("fine-grained",))
    rows += [
        replace(s, versions=("1.",), pins={"networkMemory": 32 * MIB})
        for s in _over("legacy-buffers", {SEGMENT: "32k", BUFFERS: "1024"}, True, ("fine-grained", *WITHOUT_TASK_HEAP))
    ]
    rows += _over("managed-size", {MAN: "100m"}, True, WITHOUT_MANAGED, {"managedMemory": 100 * MIB})
    rows += _over("managed-legacy-size", {OLD_MANAGED: "100m"}, True, WITHOUT_MANAGED, {"managedMemory": 100 * MIB})
    rows += _over("managed-fraction", {MF: "0.5"}, True, WITHOUT_MANAGED)
    rows += _over("managed-fraction-negative", {MF: "-0.1"}, False, WITHOUT_MANAGED)
    rows += _over("managed-fraction-one", {MF: "1.0"}, False, WITHOUT_MANAGED)
    rows += _over("fractions-add-up", {NF: "0.6", MF: "0.6"}, False, ("flink", "process"))
    rows.append(
        Scenario(
            "internal-add-up",
            {F: "499m", FH: "100m", TH: "100m", TO: "100m", NMIN: "100m", NMAX: "100m", MAN: "100m"},
            False,
        )
    )
    rows.append(Scenario("total-process-2g", {P: "2g"}, True, {"totalProcessMemory": 2 << 30}))
    rows.append(Scenario("total-flink-1g", {F: "1g"}, True, {"totalFlinkMemory": 1 << 30}))
    rows.append(Scenario("no-memory-option", {}, False))
    # The network derived as the rest of total Flink with task heap and managed given: 400m fits a
    # tiny fraction; 500m is outside [900m, 1000m] and [100m, 150m]; 176m is not 10 x 16m buffers.
    derive_400 = {F: "1280m", TH: "424m", MAN: "200m"}
    derive_500 = {F: "1280m", TH: "324m", MAN: "200m"}
    rows.append(Scenario("network-rest-not-matching-fraction", {**derive_400, NF: "0.001"}, True))
    rows.append(Scenario("network-rest-below-min", {**derive_500, NMIN: "900m", NMAX: "1000m"}, False))
    rows.append(Scenario("network-rest-above-max", {**derive_500, NMIN: "100m", NMAX: "150m"}, False))
    rows.append(
        Scenario(
            "network-rest-not-legacy-buffers",
            {F: "1280m", TH: "648m", MAN: "200m", SEGMENT: "16m", BUFFERS: "10"},
            False,
            versions=("1.",),
        )
    )
    # ProcessMemoryUtilsTestBase
    rows += _over("metaspace", {META: "50m"}, True, pins={"jvmMetaspace": 50 * MIB})
    rows += _over("overhead-range", {OMIN: "50m", OMAX: "200m"}, True)
    rows += _over("overhead-range-failure", {OMIN: "200m", OMAX: "50m"}, False)
    rows += _over("overhead-fraction", {OMIN: "0", OMAX: "1t", OF: "0.2"}, True)
    rows += _over("overhead-fraction-negative", {OF: "-0.1"}, False)
    rows += _over("overhead-fraction-one", {OF: "1.0"}, False)
    derive = {P: "1000m", F: "800m", META: "100m", OMIN: "50m", OMAX: "200m", OF: "0.5"}
    rows.append(Scenario("overhead-from-process-and-flink", derive, True, {"jvmOverhead": 100 * MIB}))
    rows.append(Scenario("overhead-from-process-and-flink-failure", {**derive, OMIN: "150m"}, False))
    rows.append(
        Scenario("process-add-up-failure", {P: "699m", F: "500m", META: "100m", OMIN: "100m", OMAX: "100m"}, False)
    )
    rows.append(Scenario("legacy-heap-size", {LEGACY: "1g"}, True, versions=("1.",)))
    rows.append(Scenario("legacy-heap-mb", {LEGACY_MB: "1024"}, True, versions=("1.",)))
    rows.append(Scenario("new-option-and-legacy-heap", {F: "1g", LEGACY: "2g"}, True, {"totalFlinkMemory": 1 << 30}))
    return rows


SCENARIOS: Final[tuple[Scenario, ...]] = tuple(_scenarios())


def scenario_records() -> list[Record]:
    """Every scenario in both modes (the tests ran the standalone derivation; native adds the pod)."""
    return [scenario.record(mode) for scenario in SCENARIOS for mode in ("standalone", "native")]
