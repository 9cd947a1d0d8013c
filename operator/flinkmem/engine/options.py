"""Typed configuration options and how Flink reads their raw values.

A configuration is a mapping from key to raw value. Values from `-D`, FlinkDeployment specs and
legacy `flink-conf.yaml` files are strings; a standard-YAML `config.yaml` also yields ints, floats
and booleans, which Flink converts through their Java text form before parsing. "Is configured"
means the key is present, whatever its value; a present but unreadable value fails when read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flinkmem.engine.errors import InvalidOptionValue, OptionValue, Rule
from flinkmem.engine.javatext import (
    JavaNumberFormatError,
    float32_from_double,
    java_double_to_string,
    parse_java_double,
    parse_java_float,
    parse_java_int,
)
from flinkmem.engine.sizes import SizeParseError, format_size, parse_memory_size

__all__ = [
    "BooleanOption",
    "Config",
    "DoubleOption",
    "FloatOption",
    "IntOption",
    "MemoryOption",
    "RawValue",
    "java_text",
    "option_value",
]

RawValue = str | bool | int | float
Config = Mapping[str, RawValue]

_FLOAT_MIN = 2.0**-149
_FLOAT_MAX = 3.4028234663852886e38


def java_text(raw: RawValue) -> str:
    """The raw value's Java `toString()`, which is what Flink's converters parse."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    return java_double_to_string(raw)


def _invalid(key: str, raw: RawValue, problem: str, fix: str) -> InvalidOptionValue:
    return InvalidOptionValue(
        Rule.INVALID_VALUE,
        f"{key} has the value {java_text(raw)!r}, which Flink cannot read: {problem}.",
        fix,
        (OptionValue(key, java_text(raw)),),
    )


@dataclass(frozen=True)
class MemoryOption:
    key: str
    default: int | None = None

    def read(self, config: Config) -> int:
        raw = config.get(self.key)
        if raw is None:
            if self.default is None:
                raise KeyError(self.key)
            return self.default
        try:
            return parse_memory_size(raw if isinstance(raw, str) else java_text(raw))
        except SizeParseError as exc:
            raise _invalid(
                self.key,
                raw,
                exc.reason,
                "write a whole number followed by a unit, for example '1600m' or '2g' (a bare number means bytes)",
            ) from None


def _parse_number(key: str, raw: RawValue, parse: Callable[[str], float], fix: str) -> float:
    """A Java float/double parse of the raw value's text, or the error naming the option."""
    try:
        return parse(java_text(raw))
    except JavaNumberFormatError:
        raise _invalid(key, raw, "it is not a decimal number", fix) from None


@dataclass(frozen=True)
class FloatOption:
    """A Java `Float` option, returned widened to double exactly as Flink widens it."""

    key: str
    default: float

    def read(self, config: Config) -> float:
        raw = config.get(self.key)
        if raw is None:
            return self.default
        if isinstance(raw, float):
            if raw == 0 or _FLOAT_MIN <= abs(raw) <= _FLOAT_MAX:
                return float32_from_double(raw)
            raise _invalid(self.key, raw, "it is outside the range of a 32-bit float", "use a value in [0, 1)")
        return _parse_number(self.key, raw, parse_java_float, "write a decimal fraction such as 0.1")


@dataclass(frozen=True)
class DoubleOption:
    key: str
    default: float

    def read(self, config: Config) -> float:
        raw = config.get(self.key)
        if raw is None:
            return self.default
        if isinstance(raw, float):
            return raw
        return _parse_number(self.key, raw, parse_java_double, "write a number such as 1.5")


@dataclass(frozen=True)
class BooleanOption:
    key: str
    default: bool

    def read(self, config: Config) -> bool:
        raw = config.get(self.key)
        if raw is None:
            return self.default
        if isinstance(raw, bool):
            return raw
        upper = java_text(raw).upper()
        if upper in ("TRUE", "FALSE"):
            return upper == "TRUE"
        raise _invalid(
            self.key,
            raw,
            "only true or false (in any letter case, without spaces) are booleans",
            "write true or false",
        )


@dataclass(frozen=True)
class IntOption:
    key: str

    def read(self, config: Config) -> int:
        raw = config[self.key]
        if isinstance(raw, int) and not isinstance(raw, bool) and -(2**31) <= raw < 2**31:
            return raw
        try:
            return parse_java_int(java_text(raw))
        except JavaNumberFormatError:
            raise _invalid(
                self.key, raw, "it is not a 32-bit whole number", "write a whole number of MiB such as 1024"
            ) from None


def option_value(config: Config, option: MemoryOption | FloatOption, effective: int | float) -> OptionValue:
    """How an option looked to a rule: its configured text, and the value it took."""
    raw = config.get(option.key)
    shown = format_size(int(effective)) if isinstance(option, MemoryOption) else repr_fraction(effective)
    return OptionValue(option.key, None if raw is None else java_text(raw), shown)


def repr_fraction(value: float) -> str:
    """A fraction as Flink prints its widened float (0.1f shows as 0.10000000149011612)."""
    return "NaN" if math.isnan(value) else java_double_to_string(value)
