"""The TaskManager memory model: its options, its split of Total Flink Memory, and the resolved result.

`resolve_taskmanager` reproduces what Flink gives a TaskManager. Standalone, that is what
`bin/taskmanager.sh` gets from `BashJavaUtils GET_TM_RESOURCE_PARAMS`. On native Kubernetes it is
the pod the JobManager's resource manager creates: the client checks the configuration, the
resource manager derives the default worker (with its own CPU fallback, and at least one slot),
then sizes the pod from that worker with the total process and total Flink sizes removed, so the
JVM metaspace and overhead are derived again. The configuration is accepted only if every step is.
"""

from __future__ import annotations

from flinkmem.engine.errors import MemoryConflict, OptionValue, Rule
from flinkmem.engine.legacyheap import input_notices, map_legacy_heap
from flinkmem.engine.options import Config, configured_text, java_text
from flinkmem.engine.process import (
    Notice,
    ProcessMemorySpec,
    derive_metaspace_and_overhead,
    derive_process_memory,
    guarded_sum,
)
from flinkmem.engine.sizes import format_size
from flinkmem.engine.taskmanager.memory import TaskManagerMemory
from flinkmem.engine.taskmanager.model import MODELS, TaskManagerFlinkMemory
from flinkmem.engine.taskmanager.options import (
    LEGACY_HEAP_OPTIONS,
    MANAGED_FRACTION,
    MIN_TASK_HEAP,
    NETWORK_BUFFERS,
    NETWORK_KEYS,
    ROCKSDB_MANAGED,
    ROCKSDB_NAMES,
    ROLE,
    SIZE_KEY_NAMES,
    STATE_BACKEND_KEYS,
    TASKMANAGER_OPTIONS,
    TOTAL_FLINK,
    TOTAL_PROCESS,
)
from flinkmem.engine.versions import DeploymentMode, FlinkVersion
from flinkmem.engine.workerresources import (
    KUBERNETES_CPU,
    SLOTS,
    check_truncated_cpu,
    read_cpu,
    read_external_resources,
)

__all__ = ["TaskManagerFlinkMemory", "TaskManagerMemory", "resolve_taskmanager"]


def _fs(size: int) -> str:
    return format_size(size)


# --- notices -----------------------------------------------------------------------------------


def _input_notices(config: Config, version: FlinkVersion, legacy_env: str | None) -> list[Notice]:
    notices = input_notices(config, version, SIZE_KEY_NAMES, LEGACY_HEAP_OPTIONS, legacy_env)
    if not version.has_legacy_heap_options:
        if NETWORK_BUFFERS.key in config:
            notices.append(
                Notice(
                    "legacy-key-ignored",
                    f"{NETWORK_BUFFERS.key} is ignored by Flink {version}; use taskmanager.memory.network.min/max",
                )
            )
    elif NETWORK_BUFFERS.key in config and any(key in config for key in NETWORK_KEYS):
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
    for key in STATE_BACKEND_KEYS:
        raw = config.get(key)
        if raw is not None:
            if java_text(raw).strip().lower() not in ROCKSDB_NAMES:
                return False
            managed = config.get(ROCKSDB_MANAGED)
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
        effective = map_legacy_heap(config, LEGACY_HEAP_OPTIONS, legacy_heap_env, target, notices)
    memory_notices: list[Notice] = []
    spec: ProcessMemorySpec[TaskManagerFlinkMemory] = derive_process_memory(
        effective, TASKMANAGER_OPTIONS, MODELS[legacy], memory_notices
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
                (OptionValue(SLOTS.key, configured_text(config, SLOTS.key), str(slots)),),
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
