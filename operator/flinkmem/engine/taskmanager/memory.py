"""A resolved TaskManager as Flink hands it to the JVM: the components, the flags and the `-D` options.

Flink builds the TaskManager's dynamic configs in a `HashMap` and prints them in its iteration order
(`engine.javamap`), CPU, slots and extended resources included (the resource names in quotes from
Flink 1.15, `engine.lines`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from flinkmem.engine.javamap import hashmap_order
from flinkmem.engine.javatext import java_double_to_string
from flinkmem.engine.lines import line_of
from flinkmem.engine.process import Notice
from flinkmem.engine.sizes import mebibytes_int32
from flinkmem.engine.taskmanager.options import (
    FRAMEWORK_HEAP,
    FRAMEWORK_OFF_HEAP,
    MANAGED_SIZE,
    METASPACE,
    NETWORK_MAX,
    NETWORK_MIN,
    OVERHEAD_MAX,
    OVERHEAD_MIN,
    TASK_HEAP,
    TASK_OFF_HEAP,
)
from flinkmem.engine.versions import DeploymentMode, FlinkVersion
from flinkmem.engine.workerresources import CPU_CORES, EXTERNAL_RESOURCES, SLOTS, amount_key

__all__ = ["TaskManagerMemory"]


@dataclass(frozen=True)
class TaskManagerMemory:
    """A resolved TaskManager: every component in bytes, its CPU and slots, and what Flink hands the JVM.

    In native mode the values are those of the pod the JobManager's resource manager creates.
    """

    version: FlinkVersion
    mode: DeploymentMode
    framework_heap: int
    framework_off_heap: int
    task_heap: int
    task_off_heap: int
    network: int
    managed: int
    metaspace: int
    overhead: int
    total_flink: int
    total_process: int
    cpu_cores: float
    slots: int
    external_resources: tuple[tuple[str, int], ...] = ()
    notices: tuple[Notice, ...] = ()

    @property
    def jvm_heap(self) -> int:
        return self.framework_heap + self.task_heap

    @property
    def jvm_direct_memory(self) -> int:
        return self.framework_off_heap + self.task_off_heap + self.network

    @property
    def flink_pod_memory_mib(self) -> int:
        """The memory Flink's native resource manager requests for this pod, in MiB (`(int) (PROC >> 20)`)."""
        return mebibytes_int32(self.total_process)

    @property
    def jvm_flags(self) -> tuple[str, ...]:
        heap = self.jvm_heap
        return (
            f"-Xmx{heap}",
            f"-Xms{heap}",
            f"-XX:MaxDirectMemorySize={self.jvm_direct_memory}",
            f"-XX:MaxMetaspaceSize={self.metaspace}",
        )

    @property
    def jvm_args(self) -> str:
        return " ".join(self.jvm_flags)

    @property
    def dynamic_configs_map(self) -> dict[str, str]:
        """The `-D` properties Flink passes to the TaskManager, in Flink's (HashMap) order."""
        values = _dynamic_config_values(self)
        if not self.external_resources:
            return dict(zip(_BASE_ORDER, (values[_BASE_KEYS.index(key)] for key in _BASE_ORDER), strict=True))
        entries = dict(zip(_BASE_KEYS, values, strict=True))
        names = ";".join(name for name, _ in self.external_resources)
        entries[EXTERNAL_RESOURCES] = f'"{names}"' if line_of(self.version).quoted_external_resources else names
        for name, amount in self.external_resources:
            entries[amount_key(name)] = str(amount)
        return {key: entries[key] for key in hashmap_order(list(entries))}

    @property
    def dynamic_configs(self) -> str:
        if not self.external_resources:
            return _BASE_TEMPLATE % _ordered_values(self)
        return " ".join(f"-D {key}={value}" for key, value in self.dynamic_configs_map.items())

    @property
    def warnings(self) -> tuple[Notice, ...]:
        return tuple(n for n in self.notices if n.level == "warning")

    def to_dict(self) -> dict[str, object]:
        return {
            "flinkVersion": str(self.version),
            "mode": self.mode.value,
            "totalProcessMemory": self.total_process,
            "totalFlinkMemory": self.total_flink,
            "frameworkHeap": self.framework_heap,
            "frameworkOffHeap": self.framework_off_heap,
            "taskHeap": self.task_heap,
            "taskOffHeap": self.task_off_heap,
            "networkMemory": self.network,
            "managedMemory": self.managed,
            "jvmMetaspace": self.metaspace,
            "jvmOverhead": self.overhead,
            "jvmHeap": self.jvm_heap,
            "jvmDirectMemory": self.jvm_direct_memory,
            "cpuCores": self.cpu_cores,
            "slots": self.slots,
            "externalResources": dict(self.external_resources),
            "jvmArgs": self.jvm_args,
            "dynamicConfigs": self.dynamic_configs,
            "warnings": [n.message for n in self.warnings],
        }


def _cpu_text(memory: TaskManagerMemory) -> str:
    return java_double_to_string(memory.cpu_cores)


# Flink fills a HashMap in this order; `external-resources` is "none" when there are none.
_BASE_KEYS = (
    CPU_CORES.key,
    FRAMEWORK_HEAP.key,
    FRAMEWORK_OFF_HEAP.key,
    TASK_HEAP.key,
    TASK_OFF_HEAP.key,
    NETWORK_MIN.key,
    NETWORK_MAX.key,
    MANAGED_SIZE.key,
    METASPACE.key,
    OVERHEAD_MIN.key,
    OVERHEAD_MAX.key,
    SLOTS.key,
    EXTERNAL_RESOURCES,
)


def _dynamic_config_values(m: TaskManagerMemory) -> tuple[str, ...]:
    return (
        _cpu_text(m),
        f"{m.framework_heap}b",
        f"{m.framework_off_heap}b",
        f"{m.task_heap}b",
        f"{m.task_off_heap}b",
        f"{m.network}b",
        f"{m.network}b",
        f"{m.managed}b",
        f"{m.metaspace}b",
        f"{m.overhead}b",
        f"{m.overhead}b",
        str(m.slots),
        "none",
    )


_BASE_ORDER = tuple(hashmap_order(list(_BASE_KEYS)))
_BASE_TEMPLATE = " ".join(f"-D {key}=%s" for key in _BASE_ORDER)
_BASE_POSITIONS = tuple(_BASE_KEYS.index(key) for key in _BASE_ORDER)
_pick_ordered = operator.itemgetter(*_BASE_POSITIONS)


def _ordered_values(memory: TaskManagerMemory) -> tuple[str, ...]:
    values: tuple[str, ...] = _pick_ordered(_dynamic_config_values(memory))
    return values
