"""The TaskManager memory model: its options, its split of Total Flink Memory, and the resolved result.

`resolve_taskmanager` reproduces what Flink gives a TaskManager. Standalone, that is what
`bin/taskmanager.sh` gets from `BashJavaUtils GET_TM_RESOURCE_PARAMS`. On native Kubernetes it is
the pod the JobManager's resource manager creates: the client checks the configuration, the
resource manager derives the default worker (with its own CPU fallback, and at least one slot),
then sizes the pod from that worker with the total process and total Flink sizes removed, so the
JVM metaspace and overhead are derived again. The configuration is accepted only if every step is.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from flinkmem.engine.errors import FlinkMemError, InvalidOptionValue, MemoryConflict, OptionValue, Rule
from flinkmem.engine.javamap import hashmap_order
from flinkmem.engine.javatext import java_double_to_string
from flinkmem.engine.legacyheap import LegacyHeapOptions, input_notices, map_legacy_heap
from flinkmem.engine.options import (
    Config,
    FloatOption,
    IntOption,
    MemoryOption,
    java_text,
    option_value,
)
from flinkmem.engine.process import (
    Notice,
    ProcessMemoryOptions,
    ProcessMemorySpec,
    RangeFraction,
    RangeOptions,
    clamp,
    derive_metaspace_and_overhead,
    derive_process_memory,
    fraction_of,
    guarded_sum,
    inverse_fraction_of,
    read_fraction,
    read_range,
)
from flinkmem.engine.sizes import KIB, MAX_BYTES, MIB, checked_add, format_size, mebibytes_int32, multiply
from flinkmem.engine.versions import DeploymentMode, FlinkVersion
from flinkmem.engine.workerresources import (
    CPU_CORES,
    EXTERNAL_RESOURCES,
    KUBERNETES_CPU,
    SLOTS,
    amount_key,
    check_truncated_cpu,
    read_cpu,
    read_external_resources,
)

__all__ = [
    "FRAMEWORK_HEAP",
    "FRAMEWORK_OFF_HEAP",
    "LEGACY_HEAP",
    "LEGACY_HEAP_ENV",
    "LEGACY_HEAP_MB",
    "MANAGED_FRACTION",
    "MANAGED_SIZE",
    "METASPACE",
    "MIN_TASK_HEAP",
    "NETWORK_BUFFERS",
    "NETWORK_FRACTION",
    "NETWORK_MAX",
    "NETWORK_MIN",
    "OVERHEAD_FRACTION",
    "OVERHEAD_MAX",
    "OVERHEAD_MIN",
    "SEGMENT_SIZE",
    "TASKMANAGER_MEMORY_KEYS",
    "TASKMANAGER_OPTIONS",
    "TASK_HEAP",
    "TASK_OFF_HEAP",
    "TOTAL_FLINK",
    "TOTAL_PROCESS",
    "TaskManagerFlinkMemory",
    "TaskManagerMemory",
    "resolve_taskmanager",
]

ROLE = "TaskManager"
# 0.1f and 0.4f widened to double, as Flink widens the Float options' defaults.
_FLOAT_0_1 = 0.10000000149011612
_FLOAT_0_4 = 0.4000000059604645

TOTAL_PROCESS = MemoryOption("taskmanager.memory.process.size")
TOTAL_FLINK = MemoryOption("taskmanager.memory.flink.size")
FRAMEWORK_HEAP = MemoryOption("taskmanager.memory.framework.heap.size", 128 * MIB)
FRAMEWORK_OFF_HEAP = MemoryOption("taskmanager.memory.framework.off-heap.size", 128 * MIB)
TASK_HEAP = MemoryOption("taskmanager.memory.task.heap.size")
TASK_OFF_HEAP = MemoryOption("taskmanager.memory.task.off-heap.size", 0)
MANAGED_SIZE = MemoryOption("taskmanager.memory.managed.size", None, ("taskmanager.memory.size",))
MANAGED_FRACTION = FloatOption("taskmanager.memory.managed.fraction", _FLOAT_0_4, example="0.4")
NETWORK_MIN = MemoryOption("taskmanager.memory.network.min", 64 * MIB, ("taskmanager.network.memory.min",))
NETWORK_MAX = MemoryOption("taskmanager.memory.network.max", MAX_BYTES, ("taskmanager.network.memory.max",))
NETWORK_FRACTION = FloatOption(
    "taskmanager.memory.network.fraction", _FLOAT_0_1, ("taskmanager.network.memory.fraction",)
)
METASPACE = MemoryOption("taskmanager.memory.jvm-metaspace.size", 256 * MIB)
OVERHEAD_MIN = MemoryOption("taskmanager.memory.jvm-overhead.min", 192 * MIB)
OVERHEAD_MAX = MemoryOption("taskmanager.memory.jvm-overhead.max", 1024 * MIB)
OVERHEAD_FRACTION = FloatOption("taskmanager.memory.jvm-overhead.fraction", _FLOAT_0_1)
# 1.x only: the pre-1.10 network buffer count, used when no network size option is set.
NETWORK_BUFFERS = IntOption("taskmanager.network.numberOfBuffers", 2048, fix="write a whole number such as 2048")
SEGMENT_SIZE = MemoryOption("taskmanager.memory.segment-size", 32 * KIB)
LEGACY_HEAP = MemoryOption("taskmanager.heap.size")
LEGACY_HEAP_MB = IntOption("taskmanager.heap.mb")
LEGACY_HEAP_ENV = "FLINK_TM_HEAP"

MIN_TASK_HEAP = 128 * MIB
_MIN_SEGMENT_SIZE = 4096

TASKMANAGER_OPTIONS = ProcessMemoryOptions(
    role=ROLE,
    required_fine_grained=(TASK_HEAP, MANAGED_SIZE),
    total_flink=TOTAL_FLINK,
    total_process=TOTAL_PROCESS,
    metaspace=METASPACE,
    overhead=RangeOptions(OVERHEAD_MIN, OVERHEAD_MAX, OVERHEAD_FRACTION),
    example_process_size="1728m",
)
NETWORK = RangeOptions(NETWORK_MIN, NETWORK_MAX, NETWORK_FRACTION, Rule.NETWORK_RANGE_INCONSISTENT)
_LEGACY_HEAP_OPTIONS = LegacyHeapOptions(LEGACY_HEAP_ENV, LEGACY_HEAP, LEGACY_HEAP_MB, TOTAL_PROCESS)

TASKMANAGER_MEMORY_KEYS = (
    TOTAL_PROCESS.key,
    TOTAL_FLINK.key,
    FRAMEWORK_HEAP.key,
    FRAMEWORK_OFF_HEAP.key,
    TASK_HEAP.key,
    TASK_OFF_HEAP.key,
    MANAGED_SIZE.key,
    MANAGED_FRACTION.key,
    NETWORK_MIN.key,
    NETWORK_MAX.key,
    NETWORK_FRACTION.key,
    METASPACE.key,
    OVERHEAD_MIN.key,
    OVERHEAD_MAX.key,
    OVERHEAD_FRACTION.key,
)
# Deprecated keys Flink still reads in place of the options above (both release lines).
DEPRECATED_KEYS = (*MANAGED_SIZE.fallback_keys, *NETWORK_MIN.fallback_keys, *NETWORK_MAX.fallback_keys)
DEPRECATED_KEYS += NETWORK_FRACTION.fallback_keys
_SIZE_OPTIONS = (
    TOTAL_PROCESS,
    TOTAL_FLINK,
    FRAMEWORK_HEAP,
    FRAMEWORK_OFF_HEAP,
    TASK_HEAP,
    TASK_OFF_HEAP,
    MANAGED_SIZE,
    NETWORK_MIN,
    NETWORK_MAX,
    METASPACE,
    OVERHEAD_MIN,
    OVERHEAD_MAX,
    LEGACY_HEAP,
)
_SIZE_KEY_NAMES = tuple(key for option in _SIZE_OPTIONS for key in option.keys)
_NETWORK_KEYS = (*NETWORK_MIN.keys, *NETWORK_MAX.keys, NETWORK_FRACTION.key, *NETWORK_FRACTION.fallback_keys)
_STATE_BACKEND_KEYS = ("state.backend.type", "state.backend")
_ROCKSDB_MANAGED = "state.backend.rocksdb.memory.managed"
_ROCKSDB_NAMES = ("rocksdb", "org.apache.flink.contrib.streaming.state.embeddedrocksdbstatebackendfactory")


class TaskManagerFlinkMemory(NamedTuple):
    framework_heap: int
    framework_off_heap: int
    task_heap: int
    task_off_heap: int
    network: int
    managed: int

    @property
    def total_flink(self) -> int:
        return checked_add(*self)


def _fs(size: int) -> str:
    return format_size(size)


def _size_of(config: Config, option: MemoryOption, value: int) -> OptionValue:
    return option_value(config, option, value)


class _TaskManagerModel:
    """The TaskManager's split of Total Flink Memory (Flink's `TaskExecutorFlinkMemoryUtils`)."""

    def __init__(self, legacy_network: bool) -> None:
        # 1.x sizes the network from `taskmanager.network.numberOfBuffers` when no network option is set.
        self.legacy_network = legacy_network

    # --- network memory ----------------------------------------------------------------------

    def _uses_buffer_count(self, config: Config) -> bool:
        return self.legacy_network and NETWORK_BUFFERS.key in config and not any(key in config for key in _NETWORK_KEYS)

    def _buffers_size(self, config: Config) -> int:
        """1.x: the network size as a number of buffers times the memory segment size."""
        buffers = NETWORK_BUFFERS.read(config)
        segment = SEGMENT_SIZE.read(config)
        involved = (OptionValue(SEGMENT_SIZE.key, _configured(config, SEGMENT_SIZE.key), _fs(segment)),)
        if segment >= 1 << 31:
            problem = "larger than Flink's 2 GiB maximum"
        elif segment < _MIN_SEGMENT_SIZE:
            problem = "smaller than the minimum of 4096 bytes"
        elif segment & (segment - 1):
            problem = "not a power of two"
        else:
            problem = ""
        if problem:
            raise InvalidOptionValue(
                Rule.INVALID_VALUE,
                f"{SEGMENT_SIZE.key} is {_fs(segment)}, {problem}.",
                f"set {SEGMENT_SIZE.key} to a power of two of at least 4096 bytes, such as 32k",
                involved,
            )
        if buffers < 0:
            raise InvalidOptionValue(
                Rule.INVALID_VALUE,
                f"{NETWORK_BUFFERS.key} is {buffers}, a negative count.",
                f"remove {NETWORK_BUFFERS.key} and set {NETWORK_MIN.key} and {NETWORK_MAX.key} instead",
                (OptionValue(NETWORK_BUFFERS.key, java_text(config[NETWORK_BUFFERS.key])),),
            )
        return buffers * segment

    def _network_from_fraction(
        self, config: Config, base: int, derive: Callable[[str, int, RangeFraction], int], notices: list[Notice]
    ) -> int:
        if self._uses_buffer_count(config):
            return self._buffers_size(config)
        rf = read_range(config, NETWORK, "0.1")
        raw = derive(ROLE, base, rf)
        network = clamp(raw, rf)
        if network != raw:
            bound, key = ("capped at", NETWORK_MAX.key) if raw > rf.max else ("raised to", NETWORK_MIN.key)
            notices.append(
                Notice(
                    "network-capped",
                    f"network memory: the fraction gives {_fs(raw)}, {bound} {key} {_fs(network)}",
                )
            )
        return network

    def _check_network_remainder(
        self, config: Config, network: int, total_flink: int, task_heap: int, notices: list[Notice]
    ) -> None:
        """Task heap and managed memory given with a total: the network is what is left, and must fit."""
        if self._uses_buffer_count(config):
            expected = self._buffers_size(config)
            if network != expected:
                heap_for_match = task_heap + network - expected
                raise MemoryConflict(
                    Rule.NETWORK_BUFFERS_MISMATCH,
                    f"The network memory is what the other components leave of the Total Flink Memory "
                    f"({_fs(total_flink)}): {_fs(network)}, but {NETWORK_BUFFERS.key} x {SEGMENT_SIZE.key} "
                    f"is {_fs(expected)}.",
                    (
                        f"set {TASK_HEAP.key} to {_fs(heap_for_match)} so the network memory is {_fs(expected)}, "
                        if heap_for_match >= 0
                        else ""
                    )
                    + f"or replace {NETWORK_BUFFERS.key} by {NETWORK_MIN.key} and {NETWORK_MAX.key}",
                    (
                        OptionValue(NETWORK_BUFFERS.key, java_text(config[NETWORK_BUFFERS.key])),
                        OptionValue("Total Flink Memory", None, _fs(total_flink)),
                    ),
                )
            return
        rf = read_range(config, NETWORK, "0.1")
        if network > rf.max or network < rf.min:
            involved = (
                _size_of(config, NETWORK_MIN, rf.min),
                _size_of(config, NETWORK_MAX, rf.max),
                OptionValue(TASK_HEAP.key, _configured(config, TASK_HEAP.key), _fs(task_heap)),
                OptionValue("Total Flink Memory", None, _fs(total_flink)),
            )
            if network > rf.max:
                fix = (
                    f"raise {TASK_HEAP.key} to {_fs(task_heap + network - rf.max)} (the network keeps its max), "
                    f"or raise {NETWORK_MAX.key} to {_fs(network)}"
                )
            elif task_heap >= rf.min - network:
                fix = (
                    f"lower {TASK_HEAP.key} to {_fs(task_heap - (rf.min - network))} (the network gets its min), "
                    f"or lower {NETWORK_MIN.key} to {_fs(network)}"
                )
            else:
                fix = f"lower {NETWORK_MIN.key} to {_fs(network)}, or raise the Total Flink Memory"
            raise MemoryConflict(
                Rule.DERIVED_NETWORK_OUT_OF_RANGE,
                f"The network memory is what the other components leave of the Total Flink Memory "
                f"({_fs(total_flink)}): {_fs(network)}, outside [{_fs(rf.min)}, {_fs(rf.max)}] "
                f"({NETWORK_MIN.key}/max).",
                fix,
                involved,
            )
        if NETWORK_FRACTION.present(config) and network != multiply(total_flink, rf.fraction):
            notices.append(
                Notice(
                    "network-fraction-ignored",
                    f"network memory is the remainder {_fs(network)}; {NETWORK_FRACTION.key} is not used",
                    "info",
                )
            )

    # --- managed memory ----------------------------------------------------------------------

    @staticmethod
    def _managed(config: Config, total_flink: int) -> int:
        if MANAGED_SIZE.present(config):
            return MANAGED_SIZE.read(config)
        fraction = read_fraction(config, MANAGED_FRACTION, Rule.MANAGED_FRACTION_OUT_OF_RANGE, "0.4")
        return fraction_of(ROLE, total_flink, RangeFraction(0, MAX_BYTES, fraction))

    # --- the two entry points of the generic derivation ----------------------------------------

    def from_required_fine_grained(self, config: Config, notices: list[Notice]) -> TaskManagerFlinkMemory:
        task_heap = TASK_HEAP.read(config)
        managed = MANAGED_SIZE.read(config)
        framework_heap = FRAMEWORK_HEAP.read(config)
        framework_off_heap = FRAMEWORK_OFF_HEAP.read(config)
        task_off_heap = TASK_OFF_HEAP.read(config)
        parts = (framework_heap, framework_off_heap, task_heap, task_off_heap, managed)
        base = guarded_sum(ROLE, *parts)
        if TOTAL_FLINK.key in config:
            total_flink = TOTAL_FLINK.read(config)
            if base > total_flink:
                raise self._fine_grained_exceed(config, parts, base, total_flink, TOTAL_FLINK, None)
            network = total_flink - base
            self._check_network_remainder(config, network, total_flink, task_heap, notices)
        else:
            network = self._network_from_fraction(config, base, inverse_fraction_of, notices)
        return TaskManagerFlinkMemory(framework_heap, framework_off_heap, task_heap, task_off_heap, network, managed)

    def from_total_flink(
        self, config: Config, total_flink: int, source: MemoryOption, notices: list[Notice]
    ) -> TaskManagerFlinkMemory:
        framework_heap = FRAMEWORK_HEAP.read(config)
        framework_off_heap = FRAMEWORK_OFF_HEAP.read(config)
        task_off_heap = TASK_OFF_HEAP.read(config)
        if TASK_HEAP.key in config:
            task_heap = TASK_HEAP.read(config)
            managed = self._managed(config, total_flink)
            parts = (framework_heap, framework_off_heap, task_heap, task_off_heap, managed)
            base = guarded_sum(ROLE, *parts)
            if base > total_flink:
                raise self._fine_grained_exceed(config, parts, base, total_flink, source, self._managed)
            network = total_flink - base
            self._check_network_remainder(config, network, total_flink, task_heap, notices)
        else:
            managed = self._managed(config, total_flink)
            network = self._network_from_fraction(config, total_flink, fraction_of, notices)
            parts = (framework_heap, framework_off_heap, task_off_heap, managed, network)
            rest = guarded_sum(ROLE, *parts)
            if rest > total_flink:
                raise self._no_room_for_task_heap(config, parts, rest, total_flink, source)
            task_heap = total_flink - rest
        return TaskManagerFlinkMemory(framework_heap, framework_off_heap, task_heap, task_off_heap, network, managed)

    # --- refusals, each with the size that would work -------------------------------------------

    def _network_floor(self, config: Config) -> int:
        """The least network memory a remainder may be (for advice; unreadable options count as 0)."""
        try:
            if self._uses_buffer_count(config):
                return self._buffers_size(config)
            return NETWORK_MIN.read(config)
        except FlinkMemError:
            return 0

    def _fine_grained_exceed(
        self,
        config: Config,
        parts: tuple[int, ...],
        base: int,
        total_flink: int,
        source: MemoryOption,
        managed_of: Callable[[Config, int], int] | None,
    ) -> MemoryConflict:
        framework_heap, framework_off_heap, task_heap, task_off_heap, managed = parts
        floor = self._network_floor(config)
        if managed_of is None:
            needed: int | None = base + floor
        else:
            fixed = framework_heap + framework_off_heap + task_heap + task_off_heap + floor
            needed = _least_total_flink(lambda flink: flink - managed_of(config, flink) >= fixed)
        derived = "" if source is TOTAL_FLINK else f", what {source.key} leaves after metaspace and overhead"
        problem = (
            f"Framework heap ({_fs(framework_heap)}), framework off-heap ({_fs(framework_off_heap)}), "
            f"task heap ({_fs(task_heap)}), task off-heap ({_fs(task_off_heap)}) and managed memory "
            f"({_fs(managed)}) add up to {_fs(base)}, more than the Total Flink Memory ({_fs(total_flink)}{derived})."
        )
        lower = f"lower {TASK_HEAP.key} or the managed memory"
        fix = _raise_total_fix(config, source, needed, lower)
        involved = (
            OptionValue(TASK_HEAP.key, _configured(config, TASK_HEAP.key), _fs(task_heap)),
            OptionValue(MANAGED_SIZE.key, _configured(config, *MANAGED_SIZE.keys), _fs(managed)),
            OptionValue(source.key, _configured(config, source.key), _fs(total_flink)),
        )
        return MemoryConflict(Rule.FINE_GRAINED_EXCEEDS_FLINK, problem, fix, involved)

    def _no_room_for_task_heap(
        self, config: Config, parts: tuple[int, ...], rest: int, total_flink: int, source: MemoryOption
    ) -> MemoryConflict:
        framework_heap, framework_off_heap, task_off_heap, managed, network = parts
        fixed = framework_heap + framework_off_heap + task_off_heap

        def fits(flink: int) -> bool:
            try:
                managed_part = self._managed(config, flink)
                network_part = self._network_from_fraction(config, flink, fraction_of, [])
            except FlinkMemError:
                return False
            return fixed + managed_part + network_part <= flink

        derived = "" if source is TOTAL_FLINK else f", what {source.key} leaves after metaspace and overhead"
        problem = (
            f"Framework heap ({_fs(framework_heap)}), framework off-heap ({_fs(framework_off_heap)}), "
            f"task off-heap ({_fs(task_off_heap)}), managed ({_fs(managed)}) and network memory "
            f"({_fs(network)}) add up to {_fs(rest)}, more than the Total Flink Memory "
            f"({_fs(total_flink)}{derived}), leaving nothing for the task heap."
        )
        lower = f"lower {MANAGED_FRACTION.key} or {NETWORK_FRACTION.key}"
        fix = _raise_total_fix(config, source, _least_total_flink(fits), lower)
        involved = (
            OptionValue(source.key, _configured(config, source.key), _fs(total_flink)),
            OptionValue("managed memory", _configured(config, *MANAGED_SIZE.keys, MANAGED_FRACTION.key), _fs(managed)),
            OptionValue("network memory", _configured(config, *_NETWORK_KEYS), _fs(network)),
        )
        return MemoryConflict(Rule.NO_ROOM_FOR_TASK_HEAP, problem, fix, involved)


_MODELS = {False: _TaskManagerModel(legacy_network=False), True: _TaskManagerModel(legacy_network=True)}


def _configured(config: Config, *keys: str) -> str | None:
    for key in keys:
        raw = config.get(key)
        if raw is not None:
            return java_text(raw)
    return None


def _least_total_flink(fits: Callable[[int], bool]) -> int | None:
    """The smallest whole-MiB total for which `fits` holds (None if none does), for advice."""
    if not fits(MAX_BYTES):
        return None
    low, high = 0, MAX_BYTES
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    mebibytes = -(-low // MIB)
    # The byte-level search may land on a local step; settle on a whole MiB that fits.
    for _ in range(64):
        if mebibytes * MIB > MAX_BYTES:
            return low
        if fits(mebibytes * MIB):
            return mebibytes * MIB
        mebibytes += 1
    return low


def _least_process_for(config: Config, total_flink: int) -> int | None:
    """The smallest whole-MiB process size whose derived Total Flink Memory is at least `total_flink`."""
    try:
        metaspace = METASPACE.read(config)
        rf = read_range(config, TASKMANAGER_OPTIONS.overhead)
    except FlinkMemError:
        return None

    def fits(process: int) -> bool:
        overhead = clamp(multiply(process, rf.fraction), rf)
        return process - metaspace - overhead >= total_flink

    return _least_total_flink(fits)


def _raise_total_fix(config: Config, source: MemoryOption, needed_flink: int | None, lower: str) -> str:
    if needed_flink is None:
        return f"{lower}; no {source.key} is large enough as configured"
    needed = needed_flink if source is TOTAL_FLINK else _least_process_for(config, needed_flink)
    if needed is None:
        return lower
    return f"raise {source.key} to at least {_fs(needed)}, or {lower}"


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
        entries[EXTERNAL_RESOURCES] = f'"{names}"'
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


# --- notices -----------------------------------------------------------------------------------


def _input_notices(config: Config, version: FlinkVersion, legacy_env: str | None) -> list[Notice]:
    notices = input_notices(config, version, _SIZE_KEY_NAMES, _LEGACY_HEAP_OPTIONS, legacy_env)
    if not version.has_legacy_heap_options:
        if NETWORK_BUFFERS.key in config:
            notices.append(
                Notice(
                    "legacy-key-ignored",
                    f"{NETWORK_BUFFERS.key} is ignored by Flink {version}; use taskmanager.memory.network.min/max",
                )
            )
    elif NETWORK_BUFFERS.key in config and any(key in config for key in _NETWORK_KEYS):
        notices.append(
            Notice(
                "legacy-key-ignored",
                f"{NETWORK_BUFFERS.key} is ignored because taskmanager.memory.network.* options are set",
            )
        )
    return notices


def _outcome_notices(config: Config, memory: TaskManagerFlinkMemory, mode: DeploymentMode, slots: int) -> list[Notice]:
    notices: list[Notice] = []
    if memory.task_heap < MIN_TASK_HEAP:
        notices.append(
            Notice(
                "task-heap-below-minimum",
                f"task heap {_fs(memory.task_heap)} is below the recommended minimum of 128 MiB",
            )
        )
    if memory.managed == 0 and _uses_rocksdb(config):
        notices.append(
            Notice(
                "managed-zero-with-rocksdb",
                f"managed memory is 0 but the RocksDB state backend uses it; raise {MANAGED_FRACTION.key}",
            )
        )
    if mode is DeploymentMode.STANDALONE and (slots == 0 or slots < -1):
        notices.append(
            Notice(
                "slots-not-positive",
                f"{SLOTS.key}={slots}: the TaskManager process refuses to start; use 1 or more",
            )
        )
    return notices


def _uses_rocksdb(config: Config) -> bool:
    for key in _STATE_BACKEND_KEYS:
        raw = config.get(key)
        if raw is not None:
            if java_text(raw).strip().lower() not in _ROCKSDB_NAMES:
                return False
            managed = config.get(_ROCKSDB_MANAGED)
            return managed is None or java_text(managed).strip().lower() != "false"
    return False


# --- resolution --------------------------------------------------------------------------------


def _without_total_sizes(config: Config) -> Config:
    """The resource manager's configuration: Flink removes both total sizes before sizing pods."""
    return {k: v for k, v in config.items() if k != TOTAL_PROCESS.key and k != TOTAL_FLINK.key}


def resolve_taskmanager(
    config: Config,
    version: FlinkVersion,
    mode: DeploymentMode = DeploymentMode.NATIVE,
    legacy_heap_env: str | None = None,
) -> TaskManagerMemory:
    """Resolves the TaskManager of `config` as Flink `version` would in `mode`.

    `legacy_heap_env` is `FLINK_TM_HEAP`, if set; only 1.x reads it. Raises a `FlinkMemError`
    subclass exactly when Flink would refuse the configuration.
    """
    notices = _input_notices(config, version, legacy_heap_env)
    legacy = version.has_legacy_heap_options
    effective: Config = config
    if legacy:
        # Standalone, bin/taskmanager.sh reads the legacy heap as Total Flink Memory; the native
        # client and resource manager read it as Total Process Memory.
        target = TOTAL_FLINK if mode is DeploymentMode.STANDALONE else TOTAL_PROCESS
        effective = map_legacy_heap(config, _LEGACY_HEAP_OPTIONS, legacy_heap_env, target, notices)
    memory_notices: list[Notice] = []
    spec: ProcessMemorySpec[TaskManagerFlinkMemory] = derive_process_memory(
        effective, TASKMANAGER_OPTIONS, _MODELS[legacy], memory_notices
    )
    cpu = read_cpu(effective)
    slots = SLOTS.read(effective)
    resources = read_external_resources(effective)
    flink = spec.flink
    metaspace, overhead, total_process = spec.metaspace, spec.overhead, spec.total_process
    if mode is DeploymentMode.NATIVE:
        # The resource manager's default worker: its own CPU fallback, and at least one slot.
        fallback = KUBERNETES_CPU.read(effective)
        cpu = read_cpu(effective, fallback)
        check_truncated_cpu(cpu, effective, fallback)
        if slots <= 0:
            raise MemoryConflict(
                Rule.SLOTS_NOT_POSITIVE,
                f"{SLOTS.key} is {slots}; a native Kubernetes cluster needs at least one slot per TaskManager.",
                f"set {SLOTS.key} to 1 or more",
                (OptionValue(SLOTS.key, _configured(config, SLOTS.key), str(slots)),),
            )
        # The pod: the worker's components, JVM metaspace and overhead derived again without the totals.
        pod_notices: list[Notice] = []
        metaspace, overhead = derive_metaspace_and_overhead(
            _without_total_sizes(effective), TASKMANAGER_OPTIONS, spec.total_flink, pod_notices
        )
        total_process = guarded_sum(ROLE, spec.total_flink, metaspace, overhead)
        memory_notices = [n for n in memory_notices if not n.code.startswith("overhead")] + pod_notices
        configured = _configured_process_size(effective)
        if configured is not None and configured >> 20 != total_process >> 20:
            memory_notices.append(
                Notice(
                    "pod-process-size-differs",
                    f"native pod: {total_process >> 20} MiB, not {TOTAL_PROCESS.key} {configured >> 20} MiB; "
                    "Flink re-derives the JVM overhead",
                )
            )
    notices += memory_notices
    notices += _outcome_notices(effective, flink, mode, slots)
    return TaskManagerMemory(
        version=version,
        mode=mode,
        framework_heap=flink.framework_heap,
        framework_off_heap=flink.framework_off_heap,
        task_heap=flink.task_heap,
        task_off_heap=flink.task_off_heap,
        network=flink.network,
        managed=flink.managed,
        metaspace=metaspace,
        overhead=overhead,
        total_flink=spec.total_flink,
        total_process=total_process,
        cpu_cores=cpu,
        slots=slots,
        external_resources=resources,
        notices=tuple(notices),
    )


def _configured_process_size(config: Config) -> int | None:
    """The configured process size, already read successfully by the client step (None if unset)."""
    if TOTAL_PROCESS.key not in config:
        return None
    return TOTAL_PROCESS.read(config)
