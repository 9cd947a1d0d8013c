"""Typed configuration options and how Flink reads their raw values.

A configuration is a mapping from key to raw value. Values from `-D`, FlinkDeployment specs and
legacy `flink-conf.yaml` files are strings; a standard-YAML `config.yaml` also yields ints, floats
and booleans, which Flink converts through their Java text form before parsing. "Is configured"
means the key is present, whatever its value; a present but unreadable value fails when read.

Values are read at any length, as Flink reads them (see `javatext`): a 20,000-digit number is
refused where Java refuses it (a size, an int or a long that cannot fit) and read where Java reads
it (a float or double, correctly rounded), in linear time either way. The refusal names the option.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from flinkmem.engine.errors import InvalidOptionValue, OptionValue, Rule
from flinkmem.engine.javatext import (
    JavaNumberFormatError,
    float32_from_double,
    java_double_to_string,
    parse_java_double,
    parse_java_float,
    parse_java_int,
    parse_java_long,
)
from flinkmem.engine.sizes import SizeParseError, format_size, parse_memory_size

__all__ = [
    "BooleanOption",
    "Config",
    "DoubleOption",
    "FloatOption",
    "IntOption",
    "LongOption",
    "MemoryOption",
    "RawValue",
    "configured_text",
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
        return _int_text(raw)
    return java_double_to_string(raw)


def configured_text(config: Config, *keys: str) -> str | None:
    """The Java text of the first of `keys` that is configured, or None (for messages)."""
    for key in keys:
        raw = config.get(key)
        if raw is not None:
            return java_text(raw)
    return None


# Python refuses str() of ints beyond 4300 digits; below 2^14000 (4215 digits) it is always allowed.
_STR_INT_BITS = 14_000


def _int_text(value: int) -> str:
    """`toString()` of an integer of any size (a YAML loader may make huge ones from hex digits)."""
    if value.bit_length() <= _STR_INT_BITS:
        return str(value)
    return str(Decimal(value))  # exact, and exempt from the digit limit


def _invalid(key: str, raw: RawValue, problem: str, fix: str) -> InvalidOptionValue:
    return InvalidOptionValue(
        Rule.INVALID_VALUE,
        f"{key} has the value {java_text(raw)!r}, which Flink cannot read: {problem}.",
        fix,
        (OptionValue(key, java_text(raw)),),
    )


def _lookup(config: Config, key: str, fallback_keys: tuple[str, ...]) -> tuple[str, RawValue] | None:
    """The key that configures an option and its raw value: the main key first, then deprecated ones."""
    raw = config.get(key)
    if raw is not None:
        return key, raw
    for fallback in fallback_keys:
        raw = config.get(fallback)
        if raw is not None:
            return fallback, raw
    return None


@dataclass(frozen=True)
class MemoryOption:
    """A `MemorySize` option; `fallback_keys` are the deprecated keys Flink still reads in its place."""

    key: str
    default: int | None = None
    fallback_keys: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *self.fallback_keys)

    def present(self, config: Config) -> bool:
        """Flink's `contains`: the main key or a deprecated key is set, whatever its value."""
        return self.key in config or (bool(self.fallback_keys) and any(k in config for k in self.fallback_keys))

    def lookup(self, config: Config) -> tuple[str, RawValue] | None:
        return _lookup(config, self.key, self.fallback_keys)

    def read(self, config: Config) -> int:
        raw = config.get(self.key)
        key = self.key
        if raw is None and self.fallback_keys:
            found = _lookup(config, self.key, self.fallback_keys)
            if found is not None:
                key, raw = found
        if raw is None:
            if self.default is None:
                raise KeyError(self.key)
            return self.default
        try:
            return parse_memory_size(raw if isinstance(raw, str) else java_text(raw))
        except SizeParseError as exc:
            raise _invalid(
                key,
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
    fallback_keys: tuple[str, ...] = ()
    example: str = "0.1"

    def present(self, config: Config) -> bool:
        return self.key in config or (bool(self.fallback_keys) and any(k in config for k in self.fallback_keys))

    def lookup(self, config: Config) -> tuple[str, RawValue] | None:
        return _lookup(config, self.key, self.fallback_keys)

    def read(self, config: Config) -> float:
        raw = config.get(self.key)
        key = self.key
        if raw is None and self.fallback_keys:
            found = _lookup(config, self.key, self.fallback_keys)
            if found is not None:
                key, raw = found
        if raw is None:
            return self.default
        if isinstance(raw, float):
            if raw == 0 or _FLOAT_MIN <= abs(raw) <= _FLOAT_MAX:
                return float32_from_double(raw)
            raise _invalid(key, raw, "it is outside the range of a 32-bit float", "use a value in [0, 1)")
        return _parse_number(key, raw, parse_java_float, f"write a decimal fraction such as {self.example}")


@dataclass(frozen=True)
class DoubleOption:
    key: str
    default: float
    fallback_keys: tuple[str, ...] = ()
    example: str = "1.5"

    def present(self, config: Config) -> bool:
        return self.key in config or (bool(self.fallback_keys) and any(k in config for k in self.fallback_keys))

    def lookup(self, config: Config) -> tuple[str, RawValue] | None:
        return _lookup(config, self.key, self.fallback_keys)

    def read(self, config: Config) -> float:
        found = _lookup(config, self.key, self.fallback_keys)
        if found is None:
            return self.default
        key, raw = found
        if isinstance(raw, float):
            return raw
        return _parse_number(key, raw, parse_java_double, f"write a number such as {self.example}")


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
    """A Java `Integer` option (`Integer.parseInt` of the untrimmed text)."""

    key: str
    default: int | None = None
    fix: str = "write a whole number of MiB such as 1024"

    def read(self, config: Config) -> int:
        raw = config.get(self.key)
        if raw is None:
            if self.default is None:
                raise KeyError(self.key)
            return self.default
        if isinstance(raw, int) and not isinstance(raw, bool) and -(2**31) <= raw < 2**31:
            return raw
        try:
            return parse_java_int(java_text(raw))
        except JavaNumberFormatError:
            raise _invalid(self.key, raw, "it is not a 32-bit whole number", self.fix) from None


@dataclass(frozen=True)
class LongOption:
    """A Java `Long` option (`Long.parseLong` of the untrimmed text), read only when present."""

    key: str
    fix: str = "write a whole number such as 1"

    def read(self, config: Config) -> int | None:
        raw = config.get(self.key)
        if raw is None:
            return None
        if isinstance(raw, int) and not isinstance(raw, bool) and -(2**63) <= raw < 2**63:
            return raw
        try:
            return parse_java_long(java_text(raw))
        except JavaNumberFormatError:
            raise _invalid(self.key, raw, "it is not a 64-bit whole number", self.fix) from None


def option_value(config: Config, option: MemoryOption | FloatOption, effective: int | float) -> OptionValue:
    """How an option looked to a rule: its configured text (under the key that set it), and its value."""
    raw = config.get(option.key)
    key = option.key
    if raw is None and option.fallback_keys:
        found = _lookup(config, option.key, option.fallback_keys)
        if found is not None:
            key, raw = found
    shown = format_size(int(effective)) if isinstance(option, MemoryOption) else repr_fraction(effective)
    return OptionValue(key, None if raw is None else java_text(raw), shown)


def repr_fraction(value: float) -> str:
    """A fraction as Flink prints its widened float (0.1f shows as 0.10000000149011612)."""
    return "NaN" if math.isnan(value) else java_double_to_string(value)
