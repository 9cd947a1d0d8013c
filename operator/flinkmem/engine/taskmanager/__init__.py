"""The TaskManager memory model: its options, its split of Total Flink Memory, and the resolved result.

`resolve_taskmanager` reproduces what Flink gives a TaskManager. Standalone, that is what
`bin/taskmanager.sh` gets from `BashJavaUtils GET_TM_RESOURCE_PARAMS`. On native Kubernetes it is
the pod the JobManager's resource manager creates: the client checks the configuration, the
resource manager derives the default worker (with its own CPU fallback, and at least one slot),
then sizes the pod from that worker, with the total process and total Flink sizes removed (always
from 1.19; before, as the line's `TotalsInPod` says), so the JVM metaspace and overhead are derived
again. The configuration is accepted only if every step is. What differs between lines comes from
`engine.lines`.
"""

from __future__ import annotations

from flinkmem.engine.errors import MemoryConflict, OptionValue, Rule
from flinkmem.engine.legacyheap import input_notices, map_legacy_heap
from flinkmem.engine.lines import FlinkLine, TotalsInPod, line_notices, line_of
from flinkmem.engine.options import BooleanOption, Config, configured_text, java_text
from flinkmem.engine.process import (
    Notice,
    ProcessMemorySpec,
    derive_metaspace_and_overhead,
    derive_process_memory,
    guarded_sum,
)
from flinkmem.engine.sizes import format_size
from flinkmem.engine.taskmanager.memory import TaskManagerMemory
from flinkmem.engine.taskmanager.model import TaskManagerFlinkMemory, model_for
from flinkmem.engine.taskmanager.options import (
    DECLARATIVE,
    FINE_GRAINED_KEY,
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
    SLOTS,
    check_truncated_cpu,
    kubernetes_cpu_option,
    read_cpu,
    read_external_resources,
)

__all__ = ["TaskManagerFlinkMemory", "TaskManagerMemory", "resolve_taskmanager"]


def _fs(size: int) -> str:
    return format_size(size)


# --- notices -----------------------------------------------------------------------------------


def _input_notices(config: Config, version: FlinkVersion, legacy: bool, legacy_env: str | None) -> list[Notice]:
    notices = input_notices(config, version, legacy, SIZE_KEY_NAMES, LEGACY_HEAP_OPTIONS, legacy_env)
    if not legacy:
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


# The fine-grained resource management switch as each line's resource manager reads it.
_FINE_GRAINED_OFF_BY_DEFAULT = BooleanOption(FINE_GRAINED_KEY, False)
_FINE_GRAINED_ON_BY_DEFAULT = BooleanOption(FINE_GRAINED_KEY, True)


def _resource_manager_drops_totals(line: FlinkLine, config: Config) -> bool:
    """Whether the native resource manager removes both total sizes before sizing the pod; reading the
    switch fails (as it fails the resource manager) when its value is not a Boolean."""
    totals = line.totals_in_pod
    if totals is TotalsInPod.DROPPED:
        return True
    if totals is TotalsInPod.DROPPED_UNLESS_FINE_GRAINED_OFF:
        return _FINE_GRAINED_ON_BY_DEFAULT.read(config)
    if totals is TotalsInPod.KEPT_UNLESS_FINE_GRAINED_AND_DECLARATIVE and not DECLARATIVE.read(config):
        return False
    return _FINE_GRAINED_OFF_BY_DEFAULT.read(config)


def resolve_taskmanager(
    config: Config,
    version: FlinkVersion,
    mode: DeploymentMode = DeploymentMode.NATIVE,
    legacy_heap_env: str | None = None,
    config_file: str | None = None,
) -> TaskManagerMemory:
    """Resolves the TaskManager of `config` as Flink `version` would in `mode`.

    `legacy_heap_env` is `FLINK_TM_HEAP`, if set; only 1.x reads it. `config_file` is the file the
    configuration came from (`engine.lines.FLINK_CONF_YAML` or `CONFIG_YAML`; None counts as config.yaml),
    which decides how 1.19 and 1.20 read lists. Raises a `FlinkMemError` subclass exactly when Flink
    would refuse the configuration, and UnsupportedInput for a version flinkmem does not support.
    """
    line = line_of(version)
    legacy = line.legacy_memory_options
    notices = line_notices(version) + _input_notices(config, version, legacy, legacy_heap_env)
    effective: Config = config
    if legacy:
        # Standalone, bin/taskmanager.sh reads the legacy heap as Total Flink Memory; the native
        # client and resource manager read it as Total Process Memory.
        target = TOTAL_FLINK if mode is DeploymentMode.STANDALONE else TOTAL_PROCESS
        effective = map_legacy_heap(config, LEGACY_HEAP_OPTIONS, legacy_heap_env, target, notices)
    memory_notices: list[Notice] = []
    spec: ProcessMemorySpec[TaskManagerFlinkMemory] = derive_process_memory(
        effective, TASKMANAGER_OPTIONS, model_for(legacy, line.network_max_default), memory_notices
    )
    cpu = read_cpu(effective, decimals=line.cpu_decimals)
    slots = SLOTS.read(effective)
    resources = read_external_resources(effective, line.yaml_lists(config_file))
    flink = spec.flink
    metaspace, overhead, total_process = spec.metaspace, spec.overhead, spec.total_process
    if mode is DeploymentMode.NATIVE:
        # The resource manager's default worker: its own CPU fallback, and at least one slot.
        kubernetes_cpu = kubernetes_cpu_option(line.kubernetes_cpu_keys)
        fallback = kubernetes_cpu.read(effective)
        cpu = read_cpu(effective, fallback, kubernetes_cpu, line.cpu_decimals)
        check_truncated_cpu(cpu, effective, fallback, kubernetes_cpu)
        if slots <= 0:
            raise MemoryConflict(
                Rule.SLOTS_NOT_POSITIVE,
                f"{SLOTS.key} is {slots}; a native Kubernetes cluster needs at least one slot per TaskManager.",
                f"set {SLOTS.key} to 1 or more",
                (OptionValue(SLOTS.key, configured_text(config, SLOTS.key), str(slots)),),
            )
        # The pod: the worker's components, JVM metaspace and overhead derived again (without the totals
        # where the resource manager removes them; with them, the pod is the client's spec).
        pod_config = _without_total_sizes(effective) if _resource_manager_drops_totals(line, effective) else effective
        pod_notices: list[Notice] = []
        metaspace, overhead = derive_metaspace_and_overhead(
            pod_config, TASKMANAGER_OPTIONS, spec.total_flink, pod_notices
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
