"""The JobManager memory model: its options, its heap/off-heap split, and the resolved result.

`resolve_jobmanager` is the engine's entry point. It reproduces what Flink's `BashJavaUtils
GET_JM_RESOURCE_PARAMS` computes inside a JobManager container (1.x: with the legacy heap keys
mapped as the deployment mode dictates), down to the JVM flag and dynamic-config strings.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import NamedTuple

from flinkmem.engine.errors import MemoryConflict, Rule
from flinkmem.engine.legacyheap import LegacyHeapOptions, input_notices, map_legacy_heap
from flinkmem.engine.options import (
    BooleanOption,
    Config,
    FloatOption,
    IntOption,
    MemoryOption,
    option_value,
)
from flinkmem.engine.process import (
    Notice,
    OverheadOptions,
    ProcessMemoryOptions,
    ProcessMemorySpec,
    derive_process_memory,
    guarded_sum,
)
from flinkmem.engine.sizes import MIB, checked_add, format_size
from flinkmem.engine.versions import DeploymentMode, FlinkVersion

__all__ = [
    "DIRECT_MEMORY_LIMIT",
    "HEAP",
    "JOBMANAGER_MEMORY_KEYS",
    "JOBMANAGER_OPTIONS",
    "LEGACY_HEAP",
    "LEGACY_HEAP_ENV",
    "LEGACY_HEAP_MB",
    "MIN_HEAP",
    "OFF_HEAP",
    "TOTAL_FLINK",
    "TOTAL_PROCESS",
    "JobManagerFlinkMemory",
    "JobManagerMemory",
    "resolve_jobmanager",
]

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

_LEGACY_HEAP_OPTIONS = LegacyHeapOptions(LEGACY_HEAP_ENV, LEGACY_HEAP, LEGACY_HEAP_MB, TOTAL_PROCESS)

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
_SIZE_KEY_NAMES = tuple(
    o.key for o in (TOTAL_PROCESS, TOTAL_FLINK, HEAP, OFF_HEAP, METASPACE, OVERHEAD_MIN, OVERHEAD_MAX, LEGACY_HEAP)
)


class JobManagerFlinkMemory(NamedTuple):
    heap: int
    off_heap: int

    @property
    def total_flink(self) -> int:
        return checked_add(self.heap, self.off_heap)


class _JobManagerModel:
    """The JobManager's split of Total Flink Memory into JVM heap and off-heap."""

    def _create(self, heap: int, off_heap: int, notices: list[Notice]) -> JobManagerFlinkMemory:
        if heap < MIN_HEAP:
            notices.append(
                Notice(
                    "heap-below-minimum",
                    f"JVM heap {format_size(heap)} is below the recommended minimum of 128 MiB",
                )
            )
        return JobManagerFlinkMemory(heap, off_heap)

    def from_required_fine_grained(self, config: Config, notices: list[Notice]) -> JobManagerFlinkMemory:
        heap = HEAP.read(config)
        off_heap = OFF_HEAP.read(config)
        if TOTAL_FLINK.key in config:
            total_flink = TOTAL_FLINK.read(config)
            involved = (
                option_value(config, HEAP, heap),
                option_value(config, OFF_HEAP, off_heap),
                option_value(config, TOTAL_FLINK, total_flink),
            )
            if OFF_HEAP.key in config:
                derived = guarded_sum("JobManager", heap, off_heap, options=involved)
                if derived != total_flink:
                    raise MemoryConflict(
                        Rule.HEAP_PLUS_OFF_HEAP_MISMATCH,
                        f"{HEAP.key} ({format_size(heap)}) plus {OFF_HEAP.key} ({format_size(off_heap)}) "
                        f"is {format_size(derived)}, but {TOTAL_FLINK.key} is {format_size(total_flink)}.",
                        f"set only two of the three options, or make heap + off-heap equal {TOTAL_FLINK.key}",
                        involved,
                    )
            else:
                if heap > total_flink:
                    raise MemoryConflict(
                        Rule.HEAP_EXCEEDS_FLINK,
                        f"{HEAP.key} ({format_size(heap)}) is larger than {TOTAL_FLINK.key} "
                        f"({format_size(total_flink)}), which must contain it.",
                        f"raise {TOTAL_FLINK.key} above {format_size(heap)} or set only one of the two",
                        involved,
                    )
                off_heap = total_flink - heap
                if off_heap != OFF_HEAP.default:
                    notices.append(
                        Notice(
                            "off-heap-derived",
                            f"off-heap memory is {TOTAL_FLINK.key} minus {HEAP.key} = {format_size(off_heap)}",
                            "info",
                        )
                    )
        return self._create(heap, off_heap, notices)

    def from_total_flink(
        self, config: Config, total_flink: int, source: MemoryOption, notices: list[Notice]
    ) -> JobManagerFlinkMemory:
        off_heap = OFF_HEAP.read(config)
        if total_flink <= off_heap:
            derived = "" if source is TOTAL_FLINK else f", what {source.key} leaves after metaspace and overhead"
            raise MemoryConflict(
                Rule.FLINK_NOT_ABOVE_OFF_HEAP,
                f"Total Flink Memory ({format_size(total_flink)}{derived}) is not larger than {OFF_HEAP.key} "
                f"({format_size(off_heap)}), so nothing is left for the JVM heap.",
                f"raise {source.key} or lower {OFF_HEAP.key} below {format_size(total_flink)}",
                (option_value(config, source, config_size(config, source)), option_value(config, OFF_HEAP, off_heap)),
            )
        return self._create(total_flink - off_heap, off_heap, notices)


_MODEL = _JobManagerModel()


def config_size(config: Config, option: MemoryOption) -> int:
    """The option's size for an error message; only called after it was read successfully."""
    return option.read(config)


@dataclass(frozen=True)
class JobManagerMemory:
    """A resolved JobManager: every component in bytes, and what Flink hands to the JVM."""

    version: FlinkVersion
    mode: DeploymentMode
    heap: int
    off_heap: int
    metaspace: int
    overhead: int
    total_flink: int
    total_process: int
    direct_memory_limit_enabled: bool
    notices: tuple[Notice, ...] = ()

    @property
    def jvm_heap(self) -> int:
        """The `-Xmx`/`-Xms` value: the JobManager's JVM heap is its whole heap option."""
        return self.heap

    @property
    def jvm_direct_memory(self) -> int | None:
        """The `-XX:MaxDirectMemorySize` value, or None when Flink leaves direct memory unlimited."""
        return self.off_heap if self.direct_memory_limit_enabled else None

    @property
    def jvm_flags(self) -> tuple[str, ...]:
        flags = [f"-Xmx{self.heap}", f"-Xms{self.heap}"]
        if self.direct_memory_limit_enabled:
            flags.append(f"-XX:MaxDirectMemorySize={self.off_heap}")
        flags.append(f"-XX:MaxMetaspaceSize={self.metaspace}")
        return tuple(flags)

    @property
    def jvm_args(self) -> str:
        return " ".join(self.jvm_flags)

    @property
    def dynamic_configs_map(self) -> dict[str, str]:
        return {key: f"{value}b" for key, value in zip(_DYNAMIC_CONFIG_KEYS, _dynamic_config_values(self), strict=True)}

    @property
    def dynamic_configs(self) -> str:
        return _DYNAMIC_CONFIGS_TEMPLATE % _dynamic_config_values(self)

    @property
    def warnings(self) -> tuple[Notice, ...]:
        return tuple(n for n in self.notices if n.level == "warning")

    def to_dict(self) -> dict[str, object]:
        return {
            "flinkVersion": str(self.version),
            "mode": self.mode.value,
            "totalProcessMemory": self.total_process,
            "totalFlinkMemory": self.total_flink,
            "jvmHeap": self.heap,
            "offHeap": self.off_heap,
            "jvmMetaspace": self.metaspace,
            "jvmOverhead": self.overhead,
            "jvmDirectMemory": self.jvm_direct_memory,
            "jvmArgs": self.jvm_args,
            "dynamicConfigs": self.dynamic_configs,
            "warnings": [n.message for n in self.warnings],
        }


# Flink builds the dynamic configs in a HashMap whose iteration order for these five keys is fixed;
# the entrypoint later re-reads them, pinning overhead min and max to the derived value.
_DYNAMIC_CONFIGS = (
    (OFF_HEAP.key, "off_heap"),
    (OVERHEAD_MIN.key, "overhead"),
    (METASPACE.key, "metaspace"),
    (HEAP.key, "heap"),
    (OVERHEAD_MAX.key, "overhead"),
)
_DYNAMIC_CONFIG_KEYS = tuple(key for key, _ in _DYNAMIC_CONFIGS)
_dynamic_config_values = operator.attrgetter(*(field for _, field in _DYNAMIC_CONFIGS))
_DYNAMIC_CONFIGS_TEMPLATE = " ".join(f"-D {key}=%db" for key in _DYNAMIC_CONFIG_KEYS)


def _input_notices(config: Config, version: FlinkVersion, legacy_env: str | None) -> list[Notice]:
    return input_notices(config, version, _SIZE_KEY_NAMES, _LEGACY_HEAP_OPTIONS, legacy_env)


def resolve_jobmanager(
    config: Config,
    version: FlinkVersion,
    mode: DeploymentMode = DeploymentMode.NATIVE,
    legacy_heap_env: str | None = None,
) -> JobManagerMemory:
    """Resolves the JobManager memory of `config` as Flink `version` would in `mode`.

    `legacy_heap_env` is the JobManager's `FLINK_JM_HEAP` environment variable, if set; only 1.x
    reads it. Raises a `FlinkMemError` subclass exactly when Flink would refuse the configuration.
    """
    notices = _input_notices(config, version, legacy_heap_env)
    effective: Config = config
    if version.has_legacy_heap_options:
        # Inside the pod the start scripts ask for the heap; Flink's native client sizes the
        # container from the same legacy value read as total process memory.
        target = TOTAL_PROCESS if mode is DeploymentMode.NATIVE else HEAP
        effective = map_legacy_heap(config, _LEGACY_HEAP_OPTIONS, legacy_heap_env, target, notices)
    spec: ProcessMemorySpec[JobManagerFlinkMemory] = derive_process_memory(
        effective, JOBMANAGER_OPTIONS, _MODEL, notices
    )
    direct_limit = DIRECT_MEMORY_LIMIT.read(effective)
    return JobManagerMemory(
        version=version,
        mode=mode,
        heap=spec.flink.heap,
        off_heap=spec.flink.off_heap,
        metaspace=spec.metaspace,
        overhead=spec.overhead,
        total_flink=spec.total_flink,
        total_process=spec.total_process,
        direct_memory_limit_enabled=direct_limit,
        notices=tuple(notices),
    )
