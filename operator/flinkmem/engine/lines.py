"""What differs between Flink release lines, as data: one `FlinkLine` per line flinkmem is exact for.

Every field of `FlinkLine` is one behaviour that changed between lines, with the Flink change (JIRA,
class) that introduced today's behaviour named beside it; `LINES` is the table of the lines flinkmem
resolves exactly, 1.13 to 2.3, each written as the previous line plus what changed. The models read
their options and behaviours from a line (`line_of`); nothing else in the engine compares versions.
How the table was measured (every line's jars against flinkmem, rule by rule) is in
docs/flink-lines.md.

`FlinkVersion.parse` is syntactic; whether flinkmem can answer for a version is asked here, apart:

- exact: a line of `LINES`, and `2.x` (the newest 2.x line, 2.3);
- unreleased: a 2.x line newer than the newest verified one. It is resolved with the newest verified
  line's rules and a warning saying so (`line_notices`); in a cluster its pods are left as Flink
  builds them;
- unsupported: 1.x before 1.13 (1.12.0 and 1.12.1 differ from 1.12.2 and later, which a line cannot
  tell), 1.x after 1.20 (there is none), `1.x`, and majors other than 1 and 2. Refused.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, replace

from flinkmem.engine.errors import UnsupportedInput
from flinkmem.engine.process import Notice
from flinkmem.engine.sizes import GIB, MAX_BYTES
from flinkmem.engine.versions import FlinkVersion

__all__ = [
    "CONFIG_YAML",
    "EXACT_RANGE",
    "FLINK_CONF_YAML",
    "LINES",
    "NEWEST",
    "UNRELEASED_NOTICE",
    "FlinkLine",
    "ListSyntax",
    "Support",
    "TotalsInPod",
    "line_notices",
    "line_of",
    "not_exact_reason",
    "support_of",
    "unsupported_message",
]

# Flink's configuration files: the standard-YAML one (1.19+) and the legacy line format (up to 1.20).
CONFIG_YAML = "config.yaml"
FLINK_CONF_YAML = "flink-conf.yaml"
# The code of the warning a resolution of an unreleased line carries.
UNRELEASED_NOTICE = "flink-line-unreleased"


class Support(enum.Enum):
    """What flinkmem can say about a Flink version."""

    EXACT = "exact"
    UNRELEASED = "unreleased"
    UNSUPPORTED = "unsupported"


class TotalsInPod(enum.Enum):
    """Whether the native resource manager removes `taskmanager.memory.process.size` and `.flink.size`
    before it sizes a TaskManager pod (`ActiveResourceManagerFactory.getEffectiveConfigurationForResourceManager`).

    When it keeps them, the pod is the client's spec; when it removes them, the JVM metaspace and
    overhead are derived again around the Total Flink Memory, and the pod can differ from the spec.
    """

    # 1.13: removed only with fine-grained resource management on, and that needs the declarative
    # resource management (`cluster.declarative-resource-management.enabled`, default true) too
    # (`ClusterOptions.isFineGrainedResourceManagementEnabled`; FLINK-17061).
    KEPT_UNLESS_FINE_GRAINED_AND_DECLARATIVE = "kept-unless-fine-grained-and-declarative"
    # 1.14-1.17: removed only with `cluster.fine-grained-resource-management.enabled: true` (default off;
    # the declarative switch was removed by FLINK-21095).
    KEPT_UNLESS_FINE_GRAINED = "kept-unless-fine-grained"
    # 1.18: removed unless the switch is false; its default became true and it is read as a Boolean,
    # so a value that is not one makes every native TaskManager fail (FLINK-31448).
    DROPPED_UNLESS_FINE_GRAINED_OFF = "dropped-unless-fine-grained-off"
    # 1.19+: always removed; the switch is gone (FLINK-31449, DeclarativeSlotManager removed).
    DROPPED = "dropped"


class ListSyntax(enum.Enum):
    """How a list option such as `external-resources` is read (`ConfigurationUtils.convertToList`)."""

    # <= 1.18: `;`-separated only (`StructuredOptionsSplitter.splitEscaped`).
    SEMICOLON = "semicolon"
    # 1.19-1.20: a YAML sequence first, then `;`, but only when the configuration came from config.yaml
    # (`GlobalConfiguration.isStandardYaml()`, false once a legacy flink-conf.yaml was loaded).
    YAML_IN_CONFIG_YAML = "yaml-in-config-yaml"
    # 2.0+: a YAML sequence first, then `;`, always (FLINK-33364, FLIP-366).
    YAML = "yaml"


@dataclass(frozen=True)
class FlinkLine:
    """One Flink release line's behaviours where they differ between lines (memory and its inputs)."""

    major: int
    minor: int
    # `taskmanager.memory.network.max` default (`TaskManagerOptions.NETWORK_MEMORY_MAX`): 1 GiB up to
    # 1.16, `MemorySize.MAX_VALUE` from 1.17 (FLINK-30472, part of FLIP-266 / FLINK-30469).
    network_max_default: int
    # Native TaskManager pods: whether the resource manager keeps the configured total sizes (above).
    totals_in_pod: TotalsInPod
    # CPU cores keep this many decimals, cut toward zero (`Resource.MAX_VALUE_SCALE`, FLINK-22505,
    # from 1.14); None: the full double (1.13).
    cpu_decimals: int | None
    # The key the native resource manager reads the TaskManager's CPU from, then its deprecated keys
    # (`KubernetesConfigOptions.TASK_MANAGER_CPU`): `kubernetes.taskmanager.cpu` up to 1.16,
    # `kubernetes.taskmanager.cpu.amount` with the old key as fallback from 1.17 (FLINK-29372).
    kubernetes_cpu_keys: tuple[str, ...]
    # The TaskManager's `-D external-resources=...` has the names in double quotes from 1.15
    # (`TaskExecutorProcessUtils.generateDynamicConfigsStr`; the JIRA issue was not identified).
    quoted_external_resources: bool
    # How `external-resources` is read (above).
    list_syntax: ListSyntax
    # `kubernetes.<role>.memory.limit-factor` exists from 1.15 (`KubernetesUtils.getResourceRequirements`,
    # FLINK-15648); before, a pod's memory limit is its request and the option is never read.
    memory_limit_factor: bool
    # The configuration files Flink reads, the one that wins first (`GlobalConfiguration.loadConfiguration`):
    # flink-conf.yaml only up to 1.18; 1.19-1.20 flink-conf.yaml if it exists, else config.yaml
    # (FLINK-33364, FLIP-366); config.yaml only from 2.0 (FLINK-37432 release note).
    config_files: tuple[str, ...]
    # The pre-1.10 heap options (`jobmanager.heap.size`/`.mb`, `taskmanager.heap.size`/`.mb`, `FLINK_JM_HEAP`,
    # `FLINK_TM_HEAP`) and the network buffer count (`taskmanager.network.numberOfBuffers`) are still read
    # (`MemoryBackwardsCompatibilityUtils`, `TaskExecutorFlinkMemoryUtils`); removed in 2.0 (FLINK-33750).
    legacy_memory_options: bool
    # Java options for every process in the start scripts (`bin/config.sh`): `env.java.opts` up to 1.16;
    # `env.java.opts.all`, else `env.java.opts`, from 1.17 (FLINK-29372).
    java_opts_keys: tuple[str, ...]
    # `env.java.default-opts.all` and `env.java.default-opts.<role>` come first, from 1.19 (FLINK-33221).
    java_default_opts: bool

    @property
    def version(self) -> FlinkVersion:
        return FlinkVersion(self.major, self.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def yaml_lists(self, config_file: str | None) -> bool:
        """Whether a list option is read as a YAML sequence first, for a configuration that came from
        `config_file` (None: no file, or one that counts as config.yaml: -D options, a FlinkDeployment)."""
        if self.list_syntax is ListSyntax.YAML:
            return True
        return self.list_syntax is ListSyntax.YAML_IN_CONFIG_YAML and config_file != FLINK_CONF_YAML


_K8S_CPU = "kubernetes.taskmanager.cpu"
_K8S_CPU_AMOUNT = "kubernetes.taskmanager.cpu.amount"

_1_13 = FlinkLine(
    major=1,
    minor=13,
    network_max_default=GIB,
    totals_in_pod=TotalsInPod.KEPT_UNLESS_FINE_GRAINED_AND_DECLARATIVE,
    cpu_decimals=None,
    kubernetes_cpu_keys=(_K8S_CPU,),
    quoted_external_resources=False,
    list_syntax=ListSyntax.SEMICOLON,
    memory_limit_factor=False,
    config_files=(FLINK_CONF_YAML,),
    legacy_memory_options=True,
    java_opts_keys=("env.java.opts",),
    java_default_opts=False,
)
# Each line: the previous one and what changed in it.
_1_14 = replace(_1_13, minor=14, cpu_decimals=8, totals_in_pod=TotalsInPod.KEPT_UNLESS_FINE_GRAINED)
_1_15 = replace(_1_14, minor=15, quoted_external_resources=True, memory_limit_factor=True)
_1_16 = replace(_1_15, minor=16)
_1_17 = replace(
    _1_16,
    minor=17,
    network_max_default=MAX_BYTES,
    kubernetes_cpu_keys=(_K8S_CPU_AMOUNT, _K8S_CPU),
    java_opts_keys=("env.java.opts.all", "env.java.opts"),
)
_1_18 = replace(_1_17, minor=18, totals_in_pod=TotalsInPod.DROPPED_UNLESS_FINE_GRAINED_OFF)
_1_19 = replace(
    _1_18,
    minor=19,
    totals_in_pod=TotalsInPod.DROPPED,
    list_syntax=ListSyntax.YAML_IN_CONFIG_YAML,
    config_files=(FLINK_CONF_YAML, CONFIG_YAML),
    java_default_opts=True,
)
_1_20 = replace(_1_19, minor=20)
_2_0 = replace(
    _1_20, major=2, minor=0, list_syntax=ListSyntax.YAML, config_files=(CONFIG_YAML,), legacy_memory_options=False
)
_2_1 = replace(_2_0, minor=1)
_2_2 = replace(_2_0, minor=2)
_2_3 = replace(_2_0, minor=3)

LINES: dict[tuple[int, int], FlinkLine] = {
    (line.major, line.minor): line
    for line in (_1_13, _1_14, _1_15, _1_16, _1_17, _1_18, _1_19, _1_20, _2_0, _2_1, _2_2, _2_3)
}
# The newest line flinkmem has verified; `2.x` and unreleased 2.x lines are resolved with its rules.
NEWEST = _2_3
_OLDEST = _1_13
EXACT_RANGE = f"{_OLDEST} to {NEWEST}"


def support_of(version: FlinkVersion) -> Support:
    """Whether flinkmem is exact for `version`, resolves it as the newest verified line, or cannot."""
    if version.minor is None:
        return Support.EXACT if version.major == NEWEST.major else Support.UNSUPPORTED
    if (version.major, version.minor) in LINES:
        return Support.EXACT
    if version.major == NEWEST.major and version.minor > NEWEST.minor:
        return Support.UNRELEASED
    return Support.UNSUPPORTED


def unsupported_message(version: FlinkVersion) -> str:
    return (
        f"Flink {version} is not supported: flinkmem resolves Flink {EXACT_RANGE} exactly "
        f"(and newer {NEWEST.major}.x lines with the rules of {NEWEST})"
    )


@functools.cache
def line_of(version: FlinkVersion) -> FlinkLine:
    """The rules `version` is resolved with; UnsupportedInput for a version flinkmem does not support."""
    support = support_of(version)
    if support is Support.UNSUPPORTED:
        raise UnsupportedInput(unsupported_message(version))
    if support is Support.UNRELEASED or version.minor is None:
        return NEWEST
    return LINES[version.major, version.minor]


def line_notices(version: FlinkVersion) -> list[Notice]:
    """What a resolution for `version` must say about the rules it used (an unreleased line's warning)."""
    if support_of(version) is Support.UNRELEASED:
        return [
            Notice(
                UNRELEASED_NOTICE,
                f"Flink {version} is newer than the newest line flinkmem has verified ({NEWEST}); "
                f"it is resolved with the rules of Flink {NEWEST}",
            )
        ]
    return []


def not_exact_reason(version: FlinkVersion) -> str | None:
    """Why flinkmem does not size a process of `version` in a cluster (None when it is exact)."""
    support = support_of(version)
    if support is Support.EXACT:
        return None
    if support is Support.UNRELEASED:
        return (
            f"Flink {version} is newer than the newest line flinkmem has verified ({NEWEST}), "
            "so its pods are left as Flink builds them"
        )
    return unsupported_message(version)
