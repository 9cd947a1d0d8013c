"""The JobManager's memory options, as Flink's `JobManagerOptions` declares them, and which play which part."""

from __future__ import annotations

from flinkmem.engine.legacyheap import LegacyHeapOptions
from flinkmem.engine.options import BooleanOption, FloatOption, IntOption, MemoryOption
from flinkmem.engine.process import OverheadOptions, ProcessMemoryOptions
from flinkmem.engine.sizes import MIB

TOTAL_PROCESS = MemoryOption("jobmanager.memory.process.size")
TOTAL_FLINK = MemoryOption("jobmanager.memory.flink.size")
HEAP = MemoryOption("jobmanager.memory.heap.size")
OFF_HEAP = MemoryOption("jobmanager.memory.off-heap.size", 128 * MIB)
DIRECT_MEMORY_LIMIT = BooleanOption("jobmanager.memory.enable-jvm-direct-memory-limit", False)
METASPACE = MemoryOption("jobmanager.memory.jvm-metaspace.size", 256 * MIB)
OVERHEAD_MIN = MemoryOption("jobmanager.memory.jvm-overhead.min", 192 * MIB)
OVERHEAD_MAX = MemoryOption("jobmanager.memory.jvm-overhead.max", 1024 * MIB)
# 0.1f, widened to double the way Flink widens the Float option's default.
OVERHEAD_FRACTION = FloatOption("jobmanager.memory.jvm-overhead.fraction", 0.10000000149011612)
LEGACY_HEAP = MemoryOption("jobmanager.heap.size")
LEGACY_HEAP_MB = IntOption("jobmanager.heap.mb")
LEGACY_HEAP_ENV = "FLINK_JM_HEAP"

MIN_HEAP = 128 * MIB

LEGACY_HEAP_OPTIONS = LegacyHeapOptions(LEGACY_HEAP_ENV, LEGACY_HEAP, LEGACY_HEAP_MB, TOTAL_PROCESS)

JOBMANAGER_OPTIONS = ProcessMemoryOptions(
    role="JobManager",
    required_fine_grained=(HEAP,),
    total_flink=TOTAL_FLINK,
    total_process=TOTAL_PROCESS,
    metaspace=METASPACE,
    overhead=OverheadOptions(OVERHEAD_MIN, OVERHEAD_MAX, OVERHEAD_FRACTION),
)

JOBMANAGER_MEMORY_KEYS = (
    TOTAL_PROCESS.key,
    TOTAL_FLINK.key,
    HEAP.key,
    OFF_HEAP.key,
    DIRECT_MEMORY_LIMIT.key,
    METASPACE.key,
    OVERHEAD_MIN.key,
    OVERHEAD_MAX.key,
    OVERHEAD_FRACTION.key,
)
SIZE_KEY_NAMES = tuple(
    o.key for o in (TOTAL_PROCESS, TOTAL_FLINK, HEAP, OFF_HEAP, METASPACE, OVERHEAD_MIN, OVERHEAD_MAX, LEGACY_HEAP)
)
