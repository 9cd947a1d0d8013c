"""JVM memory flags inside user Java options, and where Flink's start scripts put those options.

Flink's `config.sh` appends the user's Java options after the memory flags it computes, and HotSpot
keeps the last occurrence of a flag, so a `-Xmx` in `env.java.opts.jobmanager` silently beats
Flink's derived heap. A role's options come from its environment variable (`FLINK_ENV_JAVA_OPTS_JM`,
`FLINK_ENV_JAVA_OPTS_TM`) when it is set, and otherwise from `env.java.default-opts.<role>` followed
by `env.java.opts.<role>`; options for every process come before them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from flinkmem.engine.options import java_text
from flinkmem.sources.roles import ALL_JAVA_OPTS_ENV, ProcessMemory, Role

__all__ = [
    "JvmMemoryFlag",
    "flags_overriding",
    "java_opts_sources",
    "memory_flags",
    "role_opts",
    "with_memory_flags",
]


_FLAG = re.compile(
    r"(?P<flag>-Xmx|-Xms|-XX:MaxHeapSize=|-XX:InitialHeapSize=|-XX:MaxMetaspaceSize=|-XX:MaxDirectMemorySize=)"
    r"(?P<value>\d+)(?P<unit>[kKmMgGtT]?)"
)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_KIND = {
    "-Xmx": "heap-max",
    "-XX:MaxHeapSize=": "heap-max",
    "-Xms": "heap-initial",
    "-XX:InitialHeapSize=": "heap-initial",
    "-XX:MaxMetaspaceSize=": "metaspace",
    "-XX:MaxDirectMemorySize=": "direct",
}


@dataclass(frozen=True)
class JvmMemoryFlag:
    text: str
    kind: str
    size: int


def _strip_quotes(text: str) -> str:
    # config.sh removes one leading and one trailing double quote from the configured options.
    text = text.strip()
    if text.startswith('"'):
        text = text[1:]
    if text.endswith('"'):
        text = text[:-1]
    return text


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def memory_flags(opts: str) -> list[JvmMemoryFlag]:
    """The memory flags in a Java options string, in order."""
    found = []
    for token in _tokens(opts):
        match = _FLAG.fullmatch(token)
        if match:
            size = int(match["value"]) * _UNITS[match["unit"].lower()]
            found.append(JvmMemoryFlag(token, _KIND[match["flag"]], size))
    return found


def java_opts_sources(config: Mapping[str, object], env: Mapping[str, str], role: Role) -> list[tuple[str, str]]:
    """(source, options) pairs in the order the role's JVM receives them after Flink's flags."""
    sources: list[tuple[str, str]] = []
    if env.get(ALL_JAVA_OPTS_ENV):
        sources.append((f"env {ALL_JAVA_OPTS_ENV}", env[ALL_JAVA_OPTS_ENV]))
    else:
        sources.append(("env.java.default-opts.all", _strip_quotes(_text(config, "env.java.default-opts.all"))))
        all_key = "env.java.opts.all" if config.get("env.java.opts.all") else "env.java.opts"
        sources.append((all_key, _strip_quotes(_text(config, all_key))))
    sources.extend(role_opts(config, env, role))
    return [(name, text) for name, text in sources if text.strip()]


def _text(config: Mapping[str, object], key: str) -> str:
    value = config.get(key)
    return java_text(value) if isinstance(value, (str, bool, int, float)) else ""


def role_opts(config: Mapping[str, object], env: Mapping[str, str], role: Role) -> list[tuple[str, str]]:
    """The role's own Java options: its environment variable, else its two configuration options."""
    if env.get(role.java_opts_env):
        return [(f"env {role.java_opts_env}", env[role.java_opts_env])]
    return [(key, _strip_quotes(_text(config, key))) for key in role.java_opts_keys]


def with_memory_flags(opts: str, memory: ProcessMemory) -> str:
    """`opts` with its memory flags removed and the derived ones appended, so the derived ones win."""
    kept = [t for t in _tokens(opts) if not _FLAG.fullmatch(t)]
    return " ".join([*(shlex.quote(t) for t in kept), *memory.jvm_flags])


def flags_overriding(
    config: Mapping[str, object], env: Mapping[str, str], role: Role, memory: ProcessMemory
) -> list[tuple[str, JvmMemoryFlag]]:
    """The memory flags in the role's Java options that the JVM would keep over Flink's derived ones, with
    where each is set. HotSpot keeps the last occurrence of a flag, and the start scripts append the user's
    options after Flink's, so only the last of each kind counts, and only if it differs."""
    expected = {
        "heap-max": memory.jvm_heap,
        "heap-initial": memory.jvm_heap,
        "metaspace": memory.metaspace,
        "direct": memory.jvm_direct_memory,
    }
    effective: dict[str, tuple[str, JvmMemoryFlag]] = {}
    for name, opts in java_opts_sources(config, env, role):
        for flag in memory_flags(opts):
            effective[flag.kind] = (name, flag)
    return [(name, flag) for name, flag in effective.values() if expected[flag.kind] != flag.size]
