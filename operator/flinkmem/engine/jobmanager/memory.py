"""A resolved JobManager as Flink hands it to the JVM: the components, the flags and the `-D` options."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from flinkmem.engine.jobmanager.options import HEAP, METASPACE, OFF_HEAP, OVERHEAD_MAX, OVERHEAD_MIN
from flinkmem.engine.process import Notice
from flinkmem.engine.versions import DeploymentMode, FlinkVersion

__all__ = ["JobManagerMemory"]


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
