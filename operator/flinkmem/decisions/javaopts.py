"""JVM memory flags inside user Java options, and where Flink's start scripts put those options.

Flink's `config.sh` appends the user's Java options after the memory flags it computes, and HotSpot
keeps the last occurrence of a flag, so a `-Xmx` in `env.java.opts.jobmanager` silently beats
Flink's derived heap. A role's options come from its environment variable (`FLINK_ENV_JAVA_OPTS_JM`,
`FLINK_ENV_JAVA_OPTS_TM`) when it is set, and otherwise from `env.java.default-opts.<role>` (from
Flink 1.19) followed by `env.java.opts.<role>`; options for every process come before them
(`env.java.default-opts.all` from 1.19, then `env.java.opts.all` or, if that is empty, `env.java.opts`
from 1.17; `env.java.opts` before). Which keys a line's scripts read is `engine.lines`.

Options are split as `shlex.split` splits them, by the linear-time equivalent in `sources.shellwords`.
A memory flag whose value is more than HotSpot reads (2^64-1 bytes) stops the JVM before it starts
("Invalid maximum heap size"); such a flag is reported with its `problem`, however many digits it has,
and never converted.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from flinkmem.engine.lines import NEWEST, FlinkLine
from flinkmem.engine.options import java_text
from flinkmem.sources import shellwords
from flinkmem.sources.roles import ALL_JAVA_OPTS_ENV, ProcessMemory, Role

__all__ = [
    "JvmMemoryFlag",
    "flags_overriding",
    "java_opts_sources",
    "memory_flags",
    "role_opts",
    "with_memory_flags",
]


# HotSpot reads sizes with ASCII digits only (strtoull); possessive, so a match never backtracks.
_FLAG = re.compile(
    r"(?P<flag>-Xmx|-Xms|-XX:MaxHeapSize=|-XX:InitialHeapSize=|-XX:MaxMetaspaceSize=|-XX:MaxDirectMemorySize=)"
    r"(?P<value>[0-9]++)(?P<unit>[kKmMgGtT]?+)",
    re.ASCII,
)
# The largest size HotSpot reads (a julong); anything larger makes it refuse to start.
JVM_MAX_SIZE = (1 << 64) - 1
# Digits of JVM_MAX_SIZE: a value with more significant digits is too large without converting it.
_MAX_SIZE_DIGITS = 20
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
    """A memory flag as written (`text`), what it sets (`kind`) and its size in bytes.

    `problem` says why the JVM refuses to start with the flag (its value is more than HotSpot reads);
    `size` is then `JVM_MAX_SIZE + 1`, equal to no derived size, and a long `text` is shortened.
    """

    text: str
    kind: str
    size: int
    problem: str | None = None


def _strip_quotes(text: str) -> str:
    # config.sh removes one leading and one trailing double quote from the configured options.
    text = text.strip()
    if text.startswith('"'):
        text = text[1:]
    if text.endswith('"'):
        text = text[:-1]
    return text


# What `shlex.quote` leaves unquoted: a non-empty word of these characters.
_SHELL_SAFE = re.compile(r"[\w@%+=:,./-]++", re.ASCII)


def _flag(token: str, match: re.Match[str]) -> JvmMemoryFlag:
    flag, digits, unit = match["flag"], match["value"].lstrip("0"), match["unit"]
    kind = _KIND[flag]
    size = int(digits or "0") * _UNITS[unit.lower()] if len(digits) <= _MAX_SIZE_DIGITS else JVM_MAX_SIZE + 1
    if size <= JVM_MAX_SIZE:
        return JvmMemoryFlag(token, kind, size)
    shown = token if len(token) <= 64 else f"{flag}{match['value'][:20]}…({len(match['value']):,} digits){unit}"
    return JvmMemoryFlag(
        shown,
        kind,
        JVM_MAX_SIZE + 1,
        f"{shown} is more than the JVM can read (at most {JVM_MAX_SIZE} bytes), so the JVM refuses to start",
    )


def memory_flags(opts: str) -> list[JvmMemoryFlag]:
    """The memory flags in a Java options string, in order."""
    return [_flag(token, match) for token, match in _flag_matches(opts)]


def _flag_matches(opts: str) -> list[tuple[str, re.Match[str]]]:
    found = []
    for token in _candidate_tokens(opts):
        match = _FLAG.fullmatch(token) if token.startswith("-X") else None
        if match:
            found.append((token, match))
    return found


def _last_flags(opts: str) -> dict[str, JvmMemoryFlag]:
    """The last memory flag of each kind (the one HotSpot keeps), kinds in the order they first appear.

    Only those few become JvmMemoryFlags: hostile options carry hundreds of thousands of flags."""
    last: dict[str, tuple[str, re.Match[str]]] = {}
    for token, match in _flag_matches(opts):
        last[_KIND[match["flag"]]] = (token, match)
    return {kind: _flag(token, match) for kind, (token, match) in last.items()}


# A word starting with -X in options without quotes or backslashes: found without splitting the rest.
_PLAIN_X_TOKEN = re.compile(r"(?<![^ \t\r\n])-X[^ \t\r\n]*+")


def _candidate_tokens(opts: str) -> list[str]:
    """The tokens of `opts` that may be memory flags: unquoted only where that could make `-X…`.

    Hostile options have millions of words: options without quotes or backslashes (nearly all) are
    searched for `-X…` words directly, and elsewhere words are read one at a time and only those that
    can become `-X…` are unquoted and kept.
    """
    if shellwords.is_plain(opts):
        return _PLAIN_X_TOKEN.findall(opts)
    try:
        # Only a word starting with a dash, a quote or a backslash can unquote to `-X…`; only those kept.
        unquoted = (shellwords.unquote(w) for w in shellwords.iter_raw_words(opts) if w[0] in "-'\"\\")
        return [token for token in unquoted if token.startswith("-X")]
    except shellwords.ShellSyntaxError:
        return [token for token in opts.split() if token.startswith("-X")]


_DEFAULT_OPTS_PREFIX = "env.java.default-opts."


def java_opts_sources(
    config: Mapping[str, object], env: Mapping[str, str], role: Role, line: FlinkLine = NEWEST
) -> list[tuple[str, str]]:
    """(source, options) pairs in the order the role's JVM receives them after Flink's flags, as the
    start scripts of `line` read them."""
    sources: list[tuple[str, str]] = []
    if env.get(ALL_JAVA_OPTS_ENV):
        sources.append((f"env {ALL_JAVA_OPTS_ENV}", env[ALL_JAVA_OPTS_ENV]))
    else:
        if line.java_default_opts:
            default_key = f"{_DEFAULT_OPTS_PREFIX}all"
            sources.append((default_key, _strip_quotes(_text(config, default_key))))
        # The first key that is set and not empty; the last one otherwise.
        keys = line.java_opts_keys
        all_key = next((key for key in keys[:-1] if config.get(key)), keys[-1])
        sources.append((all_key, _strip_quotes(_text(config, all_key))))
    sources.extend(role_opts(config, env, role, line))
    return [(name, text) for name, text in sources if text.strip()]


def _text(config: Mapping[str, object], key: str) -> str:
    value = config.get(key)
    return java_text(value) if isinstance(value, (str, bool, int, float)) else ""


def role_opts(
    config: Mapping[str, object], env: Mapping[str, str], role: Role, line: FlinkLine = NEWEST
) -> list[tuple[str, str]]:
    """The role's own Java options: its environment variable, else its configuration options (the
    default options only on lines that have them)."""
    if env.get(role.java_opts_env):
        return [(f"env {role.java_opts_env}", env[role.java_opts_env])]
    keys = [key for key in role.java_opts_keys if line.java_default_opts or not key.startswith(_DEFAULT_OPTS_PREFIX)]
    return [(key, _strip_quotes(_text(config, key))) for key in keys]


def with_memory_flags(opts: str, memory: ProcessMemory) -> str:
    """`opts` with its memory flags removed and the derived ones appended, so the derived ones win."""
    kept = [t for t in shellwords.split(opts) if not (t.startswith("-X") and _FLAG.fullmatch(t))]
    return " ".join([*(t if _SHELL_SAFE.fullmatch(t) else shlex.quote(t) for t in kept), *memory.jvm_flags])


def flags_overriding(
    config: Mapping[str, object], env: Mapping[str, str], role: Role, memory: ProcessMemory, line: FlinkLine = NEWEST
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
    for name, opts in java_opts_sources(config, env, role, line):
        for kind, flag in _last_flags(opts).items():
            effective[kind] = (name, flag)
    return [(name, flag) for name, flag in effective.values() if expected[flag.kind] != flag.size]
