"""Byte sizes as Flink's `MemorySize` parses, combines and scales them.

Sizes are plain non-negative ints of bytes, bounded by Java's `Long.MAX_VALUE`; every operation that
Flink performs with overflow checks raises `SizeOverflow` here at the same points.

Parsing takes linear time at any length, as `MemorySize.parse` reads any length: leading zeros are
skipped however many there are, and a number is measured before it is converted. Only short texts
are cached, so that a tenant cannot pin megabytes of padded sizes in the cache.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from fractions import Fraction

from flinkmem.engine.javatext import java_double_to_string, java_trim

__all__ = [
    "GIB",
    "KIB",
    "MAX_BYTES",
    "MIB",
    "TIB",
    "SizeOverflow",
    "SizeParseError",
    "checked_add",
    "checked_sub",
    "format_size",
    "mebibytes_int32",
    "multiply",
    "parse_memory_size",
]

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40
MAX_BYTES = (1 << 63) - 1

_UNITS: dict[str, int] = {}
for _names, _mult in (
    (("", "b", "bytes"), 1),
    (("k", "kb", "kibibytes"), KIB),
    (("m", "mb", "mebibytes"), MIB),
    (("g", "gb", "gibibytes"), GIB),
    (("t", "tb", "tebibytes"), TIB),
):
    for _name in _names:
        _UNITS[_name] = _mult

UNIT_SPELLINGS = "b | bytes, k | kb | kibibytes, m | mb | mebibytes, g | gb | gibibytes, t | tb | tebibytes"


class SizeParseError(ValueError):
    """The text is not a memory size Flink can read; `reason` says which part is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SizeOverflow(ArithmeticError):
    """A size or a sum of sizes does not fit in a signed 64-bit byte count."""


# Texts up to this length are cached (the cache then holds at most 4096 * 64 characters).
_CACHED_CHARS = 64


def parse_memory_size(text: str) -> int:
    """Parses `<digits>[ ]<unit>` exactly as `MemorySize.parse`; a bare number means bytes."""
    if len(text) <= _CACHED_CHARS:
        return _cached_memory_size(text)
    return _parse_memory_size(text)


def _parse_memory_size(text: str) -> int:
    trimmed = java_trim(text)
    if not trimmed:
        raise SizeParseError("the value is empty or only whitespace")
    # MemorySize.parse takes ASCII digits only, up to the first other character.
    rest = trimmed.lstrip("0123456789")
    digits = trimmed[: len(trimmed) - len(rest)]
    unit = java_trim(rest).lower()
    if not digits:
        raise SizeParseError("the value does not start with a digit (signs and decimals are not allowed)")
    # Checked on the digit count first: Python refuses to convert very long digit strings at all.
    significant = digits.lstrip("0") or "0"
    if len(significant) > 19 or int(significant) > MAX_BYTES:
        shown = digits if len(digits) <= 40 else f"{digits[:20]}…({len(digits)} digits)"
        raise SizeParseError(f"the number {shown} does not fit in a 64-bit integer")
    value = int(significant)
    multiplier = _UNITS.get(unit)
    if multiplier is None:
        raise SizeParseError(f"'{unit}' is not a memory unit; use one of: {UNIT_SPELLINGS}")
    if value * multiplier > MAX_BYTES:
        raise SizeParseError(f"'{trimmed}' is more bytes than fit in a 64-bit integer")
    return value * multiplier


_cached_memory_size = functools.lru_cache(maxsize=4096)(_parse_memory_size)


def checked_add(*sizes: int) -> int:
    total = sum(sizes)
    if total > MAX_BYTES:
        raise SizeOverflow("the sum of the memory sizes exceeds 2^63-1 bytes")
    return total


def checked_sub(minuend: int, subtrahend: int) -> int:
    if subtrahend > minuend:
        raise SizeOverflow("a memory size would become negative")
    return minuend - subtrahend


def multiply(size: int, factor: float) -> int:
    """`MemorySize.multiply(double)`: the exact product with `Double.toString(factor)`, truncated.

    Binary float multiplication would round where Flink does not, so the factor's decimal text is
    multiplied exactly and the fraction cut off.
    """
    if not factor >= 0:
        raise ValueError("a memory size can only be scaled by a non-negative factor")
    numerator, denominator = _decimal_ratio(factor)
    product = size * numerator
    if product > MAX_BYTES * denominator:
        raise SizeOverflow("the scaled memory size exceeds 2^63-1 bytes")
    return product // denominator


@functools.lru_cache(maxsize=1024)
def _decimal_ratio(factor: float) -> tuple[int, int]:
    """`Double.toString(factor)` as an exact ratio of integers (both non-negative)."""
    exact = Fraction(Decimal(java_double_to_string(factor)))
    return exact.numerator, exact.denominator


def mebibytes_int32(size: int) -> int:
    """`MemorySize.getMebiBytes()`: whole MiB, wrapped to a signed 32-bit int as Java's cast does."""
    mib = (size >> 20) & 0xFFFFFFFF
    return mib - (1 << 32) if mib >= 1 << 31 else mib


_HUMAN_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


@functools.lru_cache(maxsize=1024)
def format_size(size: int) -> str:
    """A short human form such as `1.56 GiB (1677721600 bytes)`; exact bytes always included."""
    if size < KIB:
        return f"{size} bytes"
    power = min((size.bit_length() - 1) // 10, 4)
    multiplier, name = 1 << (10 * power), _HUMAN_UNITS[power]
    if size % multiplier == 0:
        return f"{size // multiplier} {name}"
    hundredths = (size * 200 + multiplier) // (2 * multiplier)  # rounded half up
    return f"{hundredths // 100}.{hundredths % 100:02d} {name} ({size} bytes)"
