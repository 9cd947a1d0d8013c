"""The TaskManager's memory options, as Flink's `TaskManagerOptions` declares them, and which play which part."""

from __future__ import annotations

import functools
from dataclasses import replace

from flinkmem.engine.errors import Rule
from flinkmem.engine.legacyheap import LegacyHeapOptions
from flinkmem.engine.options import BooleanOption, FloatOption, IntOption, MemoryOption
from flinkmem.engine.process import ProcessMemoryOptions, RangeOptions
from flinkmem.engine.sizes import KIB, MAX_BYTES, MIB

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
# The default of the newest lines; 1.13-1.16 default to 1 GiB (`engine.lines`, `network_options`).
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
MIN_SEGMENT_SIZE = 4096

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


@functools.cache
def network_options(max_default: int) -> RangeOptions:
    """The network memory's range options of a line whose `taskmanager.memory.network.max` defaults to
    `max_default` (`FlinkLine.network_max_default`)."""
    if max_default == NETWORK_MAX.default:
        return NETWORK
    return replace(NETWORK, max=replace(NETWORK_MAX, default=max_default))


# Flink's `ClusterOptions`, read by the native resource manager of 1.13-1.18 (`engine.lines.TotalsInPod`).
FINE_GRAINED_KEY = "cluster.fine-grained-resource-management.enabled"
DECLARATIVE = BooleanOption("cluster.declarative-resource-management.enabled", True)
LEGACY_HEAP_OPTIONS = LegacyHeapOptions(LEGACY_HEAP_ENV, LEGACY_HEAP, LEGACY_HEAP_MB, TOTAL_PROCESS)

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
SIZE_OPTIONS = (
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
SIZE_KEY_NAMES = tuple(key for option in SIZE_OPTIONS for key in option.keys)
NETWORK_KEYS = (*NETWORK_MIN.keys, *NETWORK_MAX.keys, NETWORK_FRACTION.key, *NETWORK_FRACTION.fallback_keys)
STATE_BACKEND_KEYS = ("state.backend.type", "state.backend")
ROCKSDB_MANAGED = "state.backend.rocksdb.memory.managed"
ROCKSDB_NAMES = ("rocksdb", "org.apache.flink.contrib.streaming.state.embeddedrocksdbstatebackendfactory")
