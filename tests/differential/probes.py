"""Hand-picked records aimed at what differs between Flink lines (`flinkmem.engine.lines`), run on every line.

The random generators (`cases.py`, `tmcases.py`) rarely put these options together
in the way that shows a line's difference: large TaskManagers (the 1 GiB default network maximum up
to 1.16), the fine-grained resource management switch (which decided up to 1.18 whether the native
resource manager drops the configured total sizes), both spellings of the Kubernetes CPU key (only
`kubernetes.taskmanager.cpu` up to 1.16), several extended resources (their `-D` form changed in
1.13 and 1.15), the legacy heap and network-buffer keys (gone in 2.0), and the limit factors (from
1.15). Each record names what it aims at in its id: `probe/<topic>/<n>`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from tests.differential.tmvectors import (
    BUFFERS,
    CPU,
    K8S_CPU,
    LEGACY,
    LEGACY_MB,
    MAN,
    NF,
    NMAX,
    NMIN,
    OF,
    OLD_MANAGED,
    OLD_NF,
    OLD_NMAX,
    OLD_NMIN,
    SEGMENT,
    SLOTS,
    TH,
    F,
    P,
)
from tests.differential.vectors import DIRECT_LIMIT, Record

__all__ = [
    "FINE_GRAINED",
    "K8S_CPU_OLD",
    "LIMIT_FACTORS",
    "jobmanager_probes",
    "limit_factor_probes",
    "probes",
    "taskmanager_probes",
]

FINE_GRAINED: Final = "cluster.fine-grained-resource-management.enabled"
DECLARATIVE: Final = "cluster.declarative-resource-management.enabled"
K8S_CPU_OLD: Final = "kubernetes.taskmanager.cpu"
EXT: Final = "external-resources"
TM_LIMIT: Final = "kubernetes.taskmanager.memory.limit-factor"
JM_LIMIT: Final = "kubernetes.jobmanager.memory.limit-factor"

# Sizes on both sides of where the 1 GiB network maximum (<= 1.16) starts to cap: with the default
# fractions the network share reaches 1 GiB at a Flink size of 10 GiB (process about 11.5 GiB).
LARGE_PROCESS: Final = ("8g", "11g", "11500m", "11600m", "12g", "16g", "32g", "64g", "100g")
LARGE_FLINK: Final = ("9g", "10g", "10241m", "12g", "20g")
TOTALS: Final[tuple[Mapping[str, str], ...]] = (
    {P: "3g", OF: "0.25"},
    {P: "4g", OF: "0.25"},
    {P: "1728m"},
    {P: "4g"},
    {P: "16g"},
    {P: "2600m", F: "2g"},
    {P: "4g", F: "3g"},
    {P: "4g", TH: "1g", MAN: "1g", OF: "0.3"},
    {P: "5g", TH: "1g", MAN: "1g"},
    {F: "2g"},
    {TH: "1g", MAN: "1g"},
)
SWITCH_VALUES: Final = (None, "true", "false", "TRUE", "yes")
CPU_KEYS: Final[tuple[Mapping[str, str], ...]] = (
    {K8S_CPU: "2.5"},
    {K8S_CPU_OLD: "2.5"},
    {K8S_CPU: "2.5", K8S_CPU_OLD: "3"},
    {K8S_CPU: "abc", CPU: "2"},
    {K8S_CPU_OLD: "abc", CPU: "2"},
    {K8S_CPU: "0", SLOTS: "4"},
    {K8S_CPU_OLD: "-1", SLOTS: "3"},
    {K8S_CPU: "0.000000001"},
    {K8S_CPU_OLD: "0.000000001"},
    {SLOTS: "0", CPU: "2"},
    {SLOTS: "-1", CPU: "2"},
    {SLOTS: "4"},
)
RESOURCES: Final[tuple[Mapping[str, str], ...]] = (
    {EXT: "gpu", "external-resource.gpu.amount": "1"},
    {EXT: "gpu;fpga", "external-resource.gpu.amount": "1", "external-resource.fpga.amount": "2"},
    {EXT: "[gpu, fpga]", "external-resource.gpu.amount": "2", "external-resource.fpga.amount": "1"},
    {EXT: "gpu;fpga", "external-resource.gpu.amount": "1"},
    {EXT: "none"},
    {EXT: "gpu", "external-resource.gpu.amount": "0"},
    {EXT: "gpu", "external-resource.gpu.amount": "abc"},
    {EXT: "gpu", "external-resource.gpu.amount": "1", "external-resource.gpu.kubernetes.config-key": "nvidia.com/gpu"},
)
LEGACY_SETS: Final[tuple[Mapping[str, str], ...]] = (
    {LEGACY: "1g"},
    {LEGACY_MB: "1024"},
    {LEGACY: "2g", P: "4g"},
    {LEGACY: "1g", F: "2g"},
    {P: "4g", BUFFERS: "4096"},
    {P: "4g", BUFFERS: "1024", SEGMENT: "64k"},
    {P: "4g", BUFFERS: "4096", NMIN: "64m"},
    {F: "2g", TH: "512m", BUFFERS: "8192"},
    {P: "4g", BUFFERS: "2048", SEGMENT: "1000"},
    {P: "4g", BUFFERS: "16", SEGMENT: "2g"},  # a segment size beyond an int
    {P: "4g", OLD_MANAGED: "1g"},
    {P: "4g", OLD_NMIN: "256m", OLD_NMAX: "256m"},
    {P: "4g", OLD_NF: "0.2"},
    {P: "32g", OLD_NMAX: "2g"},
)


def _tm(topic: str, index: int, config: Mapping[str, str], mode: str) -> Record:
    return {"id": f"probe/{topic}/{index}/{mode}", "role": "taskmanager", "mode": mode, "config": dict(config)}


def _network() -> Iterator[tuple[str, Mapping[str, str]]]:
    for size in LARGE_PROCESS:
        yield "network-max", {P: size}
        yield "network-max", {P: size, NF: "0.2"}
    for size in LARGE_FLINK:
        yield "network-max", {F: size}
        yield "network-max", {F: size, TH: "1g"}  # network as a checked remainder
    yield "network-max", {TH: "8g", MAN: "8g"}  # inverse fraction from the parts
    yield "network-max", {TH: "8g", MAN: "8g", NMAX: "1g"}
    yield "network-max", {P: "16g", NMAX: "1g"}
    yield "network-max", {P: "16g", NMIN: "2g"}
    yield "network-max", {P: "16g", NMIN: "1200m"}


def taskmanager_probes() -> list[Record]:
    records: list[Record] = []
    index = 0
    for topic, config in _network():
        for mode in ("standalone", "native"):
            records.append(_tm(topic, index, config, mode))
        index += 1
    for total in TOTALS:
        for value in SWITCH_VALUES:
            config = dict(total)
            if value is not None:
                config[FINE_GRAINED] = value
            records.append(_tm("fine-grained", index, config, "native"))
            index += 1
        records.append(_tm("fine-grained", index, {**total, FINE_GRAINED: "true", DECLARATIVE: "false"}, "native"))
        index += 1
    for cpu in CPU_KEYS:
        for total in ({P: "4g"}, {F: "2g"}):
            for mode in ("standalone", "native"):
                records.append(_tm("cpu", index, {**total, **cpu}, mode))
            index += 1
    for resources in RESOURCES:
        for mode in ("standalone", "native"):
            records.append(_tm("resources", index, {P: "4g", **resources}, mode))
        index += 1
    for legacy in LEGACY_SETS:
        for mode in ("standalone", "native"):
            records.append(_tm("legacy", index, legacy, mode))
        index += 1
    return records


LIMIT_FACTORS: Final = ("0.5", "1", "2", "abc")


def limit_factor_probes() -> list[Record]:
    """Native records with each memory limit factor, for both roles. Not for the batch comparison:
    `resolve --batch` does not size a TaskManager pod's limit; these show per line whether Flink
    knows the option (a factor below 1 or an unparsable one is refused only where it exists)."""
    records: list[Record] = []
    for factor in LIMIT_FACTORS:
        records.append(_tm("limit-factor", 0, {P: "2g", TM_LIMIT: factor}, "native") | {"id": f"tm/{factor}"})
        config = {"jobmanager.memory.process.size": "1600m", JM_LIMIT: factor}
        records.append({"id": f"jm/{factor}", "mode": "native", "config": config})
    return records


def jobmanager_probes() -> list[Record]:
    records: list[Record] = []
    configs: list[tuple[str, Mapping[str, str]]] = [
        *(("limit-factor", {"jobmanager.memory.process.size": "1600m", JM_LIMIT: f}) for f in LIMIT_FACTORS),
        ("legacy", {"jobmanager.heap.size": "1g"}),
        ("legacy", {"jobmanager.heap.mb": "1024"}),
        ("legacy", {"jobmanager.heap.size": "2g", "jobmanager.memory.process.size": "1600m"}),
        ("legacy", {"jobmanager.heap.size": "1024"}),
        ("direct-limit", {"jobmanager.memory.process.size": "1600m", DIRECT_LIMIT: "true"}),
    ]
    for index, (topic, config) in enumerate(configs):
        for mode in ("standalone", "native"):
            records.append({"id": f"probe/{topic}/{index}/{mode}", "mode": mode, "config": dict(config)})
    return records


def probes() -> list[Record]:
    return jobmanager_probes() + taskmanager_probes()
