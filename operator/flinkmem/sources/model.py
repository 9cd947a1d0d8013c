"""A Flink configuration source as data: what every role's memory is resolved from.

See the package docstring for the sources and their precedence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from flinkmem.engine import DeploymentMode, FlinkVersion, Notice, RawValue
from flinkmem.sources import shellwords
from flinkmem.sources.roles import ALL_JAVA_OPTS_ENV, ROLES, Role

__all__ = [
    "RELEVANT_ENV",
    "RELEVANT_PREFIXES",
    "FlinkSource",
    "MainContainer",
    "dynamic_properties",
    "is_relevant",
]

# Every option flinkmem reads begins with one of these: the roles' memory, CPU, slots and legacy options,
# the Kubernetes options of both roles (limit factors, CPU), the image (a ConfigMap's Flink version), the
# Java options, extended resources, the state backend (RocksDB's managed memory) and the autoscaler's
# memory tuning switches. A source kept in a cache holds only these; a test holds the resolution of a
# trimmed source to the untrimmed one's.
RELEVANT_PREFIXES = (
    "jobmanager.",
    "taskmanager.",
    "kubernetes.jobmanager.",
    "kubernetes.taskmanager.",
    "kubernetes.container.image",
    "env.java.",
    "external-resource",
    "state.backend",
    "cluster.fine-grained-resource-management",
    "cluster.declarative-resource-management",
    # Whether the Apache operator's autoscaler tunes TaskManager memory (sources.autoscaler).
    "job.autoscaler.enabled",
    "job.autoscaler.memory.tuning.enabled",
    "kubernetes.operator.job.autoscaler.enabled",
    "kubernetes.operator.job.autoscaler.memory.tuning.enabled",
)


# The environment variables resolution reads: the Java options of all processes and of each role, and
# each role's 1.x legacy heap variable.
RELEVANT_ENV = frozenset(
    {ALL_JAVA_OPTS_ENV, *(name for role in ROLES for name in (role.java_opts_env, role.legacy_heap_env))}
)


def is_relevant(key: str) -> bool:
    return key.startswith(RELEVANT_PREFIXES)


@dataclass(frozen=True)
class MainContainer:
    """What a template (or the pod itself) says about a role's main container."""

    memory_limit: int | None = None
    memory_request: int | None = None
    memory_limit_text: str | None = None
    memory_request_text: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


_NO_CONTAINER = MainContainer(env=MappingProxyType({}))


@dataclass(frozen=True)
class FlinkSource:
    """A Flink configuration with everything else memory depends on, and where it came from."""

    kind: str  # "FlinkDeployment", "ConfigMap" or "file"
    name: str
    namespace: str
    config: Mapping[str, RawValue]
    version: FlinkVersion
    mode: DeploymentMode
    containers: Mapping[str, MainContainer] = field(default_factory=dict)
    notices: tuple[Notice, ...] = ()
    # role key -> the spec.<role>.resource.memory text that replaced <role>.memory.process.size
    resource_memory: Mapping[str, str] = field(default_factory=dict)
    # The Flink configuration file the options came from (`flink-conf.yaml` or `config.yaml`); None for
    # a FlinkDeployment or -D options, which count as config.yaml (Flink 1.19 and 1.20 read lists
    # differently from a legacy flink-conf.yaml, `engine.lines`).
    config_file: str | None = None

    @property
    def label(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    def container(self, role: Role) -> MainContainer:
        return self.containers.get(role.key) or _NO_CONTAINER

    def legacy_heap_env(self, role: Role) -> str | None:
        return self.container(role).env.get(role.legacy_heap_env)

    def trimmed(self) -> FlinkSource:
        """This source with only what resolution reads: the relevant options and environment variables."""
        # Sources are trimmed on every review; most have nothing to drop, and then nothing is copied.
        containers = self.containers
        if any(name not in RELEVANT_ENV for container in containers.values() for name in container.env):
            containers = {
                key: replace(container, env={k: v for k, v in container.env.items() if k in RELEVANT_ENV})
                for key, container in containers.items()
            }
        config = {key: value for key, value in self.config.items() if is_relevant(key)}
        if containers is self.containers and len(config) == len(self.config):
            return self
        return replace(self, config=config, containers=containers)


def _dynamic_tokens(words: Sequence[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(words):
        word = words[index]
        # Flink's start scripts take `-D key=value` and `-Dkey=value` alike.
        if word == "-D" and index + 1 < len(words):
            pair = words[index + 1]
            index += 2
        elif word.startswith("-D") and len(word) > 2:
            pair = word[2:]
            index += 1
        else:
            index += 1
            continue
        key, sep, value = pair.partition("=")
        if sep and key:
            found.append((key, value))
    return found


def dynamic_properties(container: Mapping[str, Any]) -> dict[str, str]:
    """The `-D key=value` options on a container's command line, last one winning, as Flink reads them.

    Native pods run `bash -c "<script> ... -D k=v ..."`, so each word is split again as the shell does.
    """
    words: list[str] = []
    for part in ("command", "args"):
        values = container.get(part)
        if not isinstance(values, list):
            continue
        for value in values:
            if not isinstance(value, str):
                continue
            words.extend(shellwords.split(value))
    return dict(_dynamic_tokens(words))
