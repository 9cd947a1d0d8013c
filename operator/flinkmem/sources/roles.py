"""The Flink process roles flinkmem sizes, and what differs between them outside the engine.

A JobManager and a TaskManager go through the same steps in flinkmem: the engine resolves the
role's memory, the container gets at least that much, and the role's Java-options variable gets
the derived memory flags. Only names differ: the option that `resource.memory` overrides, the
start scripts' environment variables, the limit-factor option and the pod label. A `Role` holds
those names, so validation, pod sizing and the controller are written once for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from flinkmem.engine import (
    Config,
    DeploymentMode,
    FlinkVersion,
    Notice,
    RawValue,
    resolve_jobmanager,
    resolve_taskmanager,
)
from flinkmem.engine.options import DoubleOption
from flinkmem.engine.taskmanager.options import LEGACY_HEAP_ENV as TM_LEGACY_HEAP_ENV
from flinkmem.engine.taskmanager.options import MANAGED_SIZE as TM_MANAGED_SIZE
from flinkmem.engine.taskmanager.options import TASK_HEAP as TM_TASK_HEAP
from flinkmem.engine.taskmanager.options import TOTAL_FLINK as TM_TOTAL_FLINK
from flinkmem.engine.taskmanager.options import TOTAL_PROCESS as TM_TOTAL_PROCESS

__all__ = [
    "ALL_JAVA_OPTS_ENV",
    "JOBMANAGER",
    "ROLES",
    "TASKMANAGER",
    "ProcessMemory",
    "Resolver",
    "Role",
    "role_named",
]


class ProcessMemory(Protocol):
    """What the layers above the engine need from any resolved Flink process."""

    @property
    def total_process(self) -> int: ...

    @property
    def metaspace(self) -> int: ...

    @property
    def jvm_heap(self) -> int: ...

    @property
    def jvm_direct_memory(self) -> int | None: ...

    @property
    def jvm_flags(self) -> tuple[str, ...]: ...

    @property
    def jvm_args(self) -> str: ...

    @property
    def dynamic_configs(self) -> str: ...

    @property
    def notices(self) -> tuple[Notice, ...]: ...

    @property
    def warnings(self) -> tuple[Notice, ...]: ...

    def to_dict(self) -> dict[str, object]: ...


# The start scripts' Java options for every process, read in place of env.java.opts(.all) when set.
ALL_JAVA_OPTS_ENV = "FLINK_ENV_JAVA_OPTS"

# (configuration, version, mode, the role's legacy heap variable, the file the configuration came from)
Resolver = Callable[[Config, FlinkVersion, DeploymentMode, "str | None", "str | None"], ProcessMemory]
# How a container's `-D` options combine with the configuration file, for the process they start.
DynamicOptions = Callable[[Mapping[str, RawValue], Mapping[str, str]], dict[str, RawValue]]


def _on_top(config: Mapping[str, RawValue], dynamic: Mapping[str, str]) -> dict[str, RawValue]:
    return {**config, **dynamic}


@dataclass(frozen=True)
class Role:
    """One Flink process role: its names in FlinkDeployments, pods, options and start scripts."""

    key: str  # "jobmanager": also the pod's `component` label value
    title: str  # "JobManager", for messages
    spec_field: str  # the FlinkDeployment section: spec.jobManager
    process_size_key: str  # what spec.<role>.resource.memory overrides
    java_opts_env: str  # read by the start scripts instead of the two options below, appended last
    java_opts_keys: tuple[str, ...]  # env.java.default-opts.<role>, env.java.opts.<role>
    legacy_heap_env: str  # 1.x: FLINK_JM_HEAP / FLINK_TM_HEAP
    limit_factor: DoubleOption
    resolve: Resolver
    with_dynamic_options: DynamicOptions = _on_top

    def __str__(self) -> str:
        return self.title


def _jobmanager(
    config: Config, version: FlinkVersion, mode: DeploymentMode, env: str | None, config_file: str | None
) -> ProcessMemory:
    return resolve_jobmanager(config, version, mode, env)


JOBMANAGER = Role(
    key="jobmanager",
    title="JobManager",
    spec_field="jobManager",
    process_size_key="jobmanager.memory.process.size",
    java_opts_env="FLINK_ENV_JAVA_OPTS_JM",
    java_opts_keys=("env.java.default-opts.jobmanager", "env.java.opts.jobmanager"),
    legacy_heap_env="FLINK_JM_HEAP",
    limit_factor=DoubleOption("kubernetes.jobmanager.memory.limit-factor", 1.0),
    resolve=_jobmanager,
)


def _taskmanager(
    config: Config, version: FlinkVersion, mode: DeploymentMode, env: str | None, config_file: str | None
) -> ProcessMemory:
    return resolve_taskmanager(config, version, mode, env, config_file)


_TM_PINNED = (TM_TASK_HEAP.key, TM_MANAGED_SIZE.key)
_TM_TOTALS = (TM_TOTAL_PROCESS.key, TM_TOTAL_FLINK.key)


def _taskmanager_dynamic_options(config: Mapping[str, RawValue], dynamic: Mapping[str, str]) -> dict[str, RawValue]:
    """A native TaskManager's `-D` options pin every memory component: its JobManager's resource manager
    derived them with both total sizes removed, so the pod's process is what they add up to."""
    if all(key in dynamic for key in _TM_PINNED):
        config = {k: v for k, v in config.items() if k not in _TM_TOTALS}
    return {**config, **dynamic}


TASKMANAGER = Role(
    key="taskmanager",
    title="TaskManager",
    spec_field="taskManager",
    process_size_key=TM_TOTAL_PROCESS.key,
    java_opts_env="FLINK_ENV_JAVA_OPTS_TM",
    java_opts_keys=("env.java.default-opts.taskmanager", "env.java.opts.taskmanager"),
    legacy_heap_env=TM_LEGACY_HEAP_ENV,
    limit_factor=DoubleOption("kubernetes.taskmanager.memory.limit-factor", 1.0),
    resolve=_taskmanager,
    with_dynamic_options=_taskmanager_dynamic_options,
)

ROLES: tuple[Role, ...] = (JOBMANAGER, TASKMANAGER)
_BY_KEY: Mapping[str, Role] = {role.key: role for role in ROLES}


def role_named(key: str) -> Role | None:
    return _BY_KEY.get(key)
