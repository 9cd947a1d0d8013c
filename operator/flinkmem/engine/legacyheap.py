"""Flink 1.x's legacy heap options, read in place of a missing memory option.

Flink 1.x still honours a process's pre-1.10 heap setting (`FLINK_<ROLE>_HEAP`, then
`<role>.heap.size`, then `<role>.heap.mb`) by writing it under a new memory option when that option
is not set; which option depends on the role and the launch path. 2.0 removed the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from flinkmem.engine.errors import InvalidOptionValue, OptionValue, Rule
from flinkmem.engine.options import Config, IntOption, MemoryOption, RawValue, java_text
from flinkmem.engine.process import Notice
from flinkmem.engine.sizes import SizeParseError, format_size, parse_memory_size
from flinkmem.engine.versions import FlinkVersion

__all__ = ["LegacyHeapOptions", "input_notices", "map_legacy_heap", "read_legacy_heap"]


@dataclass(frozen=True)
class LegacyHeapOptions:
    """One role's legacy heap sources, and the option to set instead (named in fixes)."""

    env: str
    heap: MemoryOption
    heap_mb: IntOption
    replacement: MemoryOption


def read_legacy_heap(config: Config, options: LegacyHeapOptions, env_value: str | None) -> tuple[int, str] | None:
    """The legacy heap value and where it came from (environment first, then heap.size, then heap.mb)."""
    if env_value is not None:
        try:
            return parse_memory_size(env_value), f"environment variable {options.env}"
        except SizeParseError as exc:
            raise InvalidOptionValue(
                Rule.LEGACY_HEAP_INVALID,
                f"The environment variable {options.env}={env_value!r} is not a memory size: {exc.reason}.",
                f"remove {options.env} and set {options.replacement.key} instead",
                (OptionValue(options.env, env_value),),
            ) from None
    if options.heap.key in config:
        return options.heap.read(config), options.heap.key
    if options.heap_mb.key in config:
        mebibytes = options.heap_mb.read(config)
        if mebibytes < 0:
            raise InvalidOptionValue(
                Rule.LEGACY_HEAP_INVALID,
                f"{options.heap_mb.key} is {mebibytes}, a negative size.",
                f"remove {options.heap_mb.key} and set {options.replacement.key} instead",
                (OptionValue(options.heap_mb.key, java_text(config[options.heap_mb.key])),),
            )
        return mebibytes << 20, options.heap_mb.key
    return None


def input_notices(
    config: Config,
    version: FlinkVersion,
    legacy_options: bool,
    size_keys: tuple[str, ...],
    options: LegacyHeapOptions,
    env_value: str | None,
) -> list[Notice]:
    """What a role's input deserves a word about: sizes without a unit, and legacy heap options a line
    without them (`legacy_options` false: 2.x) ignores."""
    notices: list[Notice] = []
    for key in size_keys:
        raw = config.get(key)
        if raw is None or isinstance(raw, (bool, float)):
            continue
        text = java_text(raw).strip()
        if text.isdigit() and text.isascii() and text.strip("0"):
            notices.append(
                Notice(
                    "bare-number-size",
                    f"{key}={text} has no unit, so Flink reads it as {text} bytes; add a unit like 'm'",
                )
            )
    if not legacy_options:
        for key in (options.heap.key, options.heap_mb.key):
            if key in config:
                notices.append(
                    Notice("legacy-key-ignored", f"{key} is ignored by Flink {version}; use {options.replacement.key}")
                )
        if env_value is not None:
            notices.append(Notice("legacy-key-ignored", f"{options.env} is ignored by Flink {version}"))
    return notices


def map_legacy_heap(
    config: Config,
    options: LegacyHeapOptions,
    env_value: str | None,
    target: MemoryOption,
    notices: list[Notice],
) -> Config:
    """`config` with the legacy heap written under `target` if `target` is unset (1.x only)."""
    if target.key in config:
        return config
    legacy = read_legacy_heap(config, options, env_value)
    if legacy is None:
        return config
    size, source = legacy
    mapped: dict[str, RawValue] = dict(config)
    mapped[target.key] = size
    notices.append(
        Notice(
            "legacy-heap-mapped",
            f"{source} ({format_size(size)}) is used as {target.key}; set {target.key} directly instead",
        )
    )
    return mapped
