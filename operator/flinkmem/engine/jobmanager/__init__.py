"""The JobManager memory model: its options, its heap/off-heap split, and the resolved result.

`resolve_jobmanager` is the engine's entry point. It reproduces what Flink's `BashJavaUtils
GET_JM_RESOURCE_PARAMS` computes inside a JobManager container (1.x: with the legacy heap keys
mapped as the deployment mode dictates), down to the JVM flag and dynamic-config strings.
"""

from __future__ import annotations

from flinkmem.engine.jobmanager.memory import JobManagerMemory
from flinkmem.engine.jobmanager.model import MODEL, JobManagerFlinkMemory
from flinkmem.engine.jobmanager.options import (
    DIRECT_MEMORY_LIMIT,
    HEAP,
    JOBMANAGER_OPTIONS,
    LEGACY_HEAP_OPTIONS,
    SIZE_KEY_NAMES,
    TOTAL_PROCESS,
)
from flinkmem.engine.legacyheap import input_notices, map_legacy_heap
from flinkmem.engine.lines import line_notices, line_of
from flinkmem.engine.options import Config
from flinkmem.engine.process import Notice, ProcessMemorySpec, derive_process_memory
from flinkmem.engine.versions import DeploymentMode, FlinkVersion

__all__ = ["JobManagerFlinkMemory", "JobManagerMemory", "resolve_jobmanager"]


def _input_notices(config: Config, version: FlinkVersion, legacy: bool, legacy_env: str | None) -> list[Notice]:
    return input_notices(config, version, legacy, SIZE_KEY_NAMES, LEGACY_HEAP_OPTIONS, legacy_env)


def resolve_jobmanager(
    config: Config,
    version: FlinkVersion,
    mode: DeploymentMode = DeploymentMode.NATIVE,
    legacy_heap_env: str | None = None,
) -> JobManagerMemory:
    """Resolves the JobManager memory of `config` as Flink `version` would in `mode`.

    `legacy_heap_env` is the JobManager's `FLINK_JM_HEAP` environment variable, if set; only 1.x
    reads it. Raises a `FlinkMemError` subclass exactly when Flink would refuse the configuration, and
    UnsupportedInput for a version flinkmem does not support (`engine.lines`).
    """
    line = line_of(version)
    notices = line_notices(version) + _input_notices(config, version, line.legacy_memory_options, legacy_heap_env)
    effective: Config = config
    if line.legacy_memory_options:
        # Inside the pod the start scripts ask for the heap; Flink's native client sizes the
        # container from the same legacy value read as total process memory.
        target = TOTAL_PROCESS if mode is DeploymentMode.NATIVE else HEAP
        effective = map_legacy_heap(config, LEGACY_HEAP_OPTIONS, legacy_heap_env, target, notices)
    spec: ProcessMemorySpec[JobManagerFlinkMemory] = derive_process_memory(
        effective, JOBMANAGER_OPTIONS, MODEL, notices
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
