"""Quantities as the Apache Flink Kubernetes Operator reads them: fabric8's `Quantity`, and its memory strings.

The operator deserializes every `requests`/`limits` value of `spec.<role>.resources` into fabric8's
`io.fabric8.kubernetes.api.model.Quantity` (kubernetes-model-core 7.3.1 in operator 1.15.0, 7.8.0 on
its main branch; Flink 2.3 shades 7.3.1, whose reading of these values is the same). fabric8 is not
Kubernetes' own quantity grammar (`sources.quantity`):

- `Quantity.parse` splits the text at its first character among `eEinumkKMGTP`: the amount before,
  the format after (so `2g` is the amount "2g" with no format); a format that holds a digit and ends
  in a letter is refused. `toString()` gives amount and format back, the text as written.
- `getNumericalAmount()` is `new BigDecimal(amount)` times the format's multiple, itself a
  `BigDecimal.pow(..., MathContext.DECIMAL64)`: 16 significant digits, so `E`, `Ei` and exponents of 16
  and more are rounded, and a format that carries digits (`e9`, and oddly `M5`) is ten to the power of
  what follows its first character.

The operator turns a memory string into the text Flink reads with `parseResourceMemoryString`
(`FlinkConfigBuilder` in 1.15.0, `ResourceConfigUtils` on main): Flink's `MemorySize.parse(..).toString()`
first; only if Flink refuses it, the text is trimmed, stripped of whitespace, upper-cased, a trailing `B`
dropped and a trailing `I` made `i`, and the `BigDecimal` of that quantity written as text. Flink reads
that text only when it is plain digits: `1.5Gi` becomes "1610612736.0" and `2E` "1.000000000000000E+18"
times two, which Flink (and the operator's validator) refuse.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fractions import Fraction

from flinkmem.engine.javatext import JavaNumberFormatError, java_trim, parse_java_int
from flinkmem.engine.sizes import SizeParseError, parse_memory_size
from flinkmem.sources.quantity import MAX_QUANTITY_CHARS

__all__ = [
    "BigDecimal",
    "Fabric8Error",
    "OperatorMemory",
    "numerical_amount",
    "operator_memory",
    "operator_memory_bytes",
]


class Fabric8Error(ValueError):
    """fabric8 (or the operator on top of it) cannot read the text; the message says why, as Java would fail."""


@dataclass(frozen=True)
class BigDecimal:
    """A Java `BigDecimal`: `unscaled` × 10^-`scale`, kept as Java keeps it (trailing zeros and all),
    since its `toString()` is what the operator hands Flink."""

    unscaled: int
    scale: int

    @property
    def value(self) -> Fraction:
        if self.scale >= 0:
            return Fraction(self.unscaled, 10**self.scale)
        return Fraction(self.unscaled * 10**-self.scale)

    def signum(self) -> int:
        return (self.unscaled > 0) - (self.unscaled < 0)

    def to_double(self) -> float:
        """`doubleValue()`: the nearest double (Java 17's fast paths and its fallback are both exact)."""
        return _to_double(self.unscaled, self.scale)

    def __str__(self) -> str:
        """`BigDecimal.toString()`: plain digits when the scale is 0, a decimal point for a positive scale
        down to 10^-6, scientific notation otherwise."""
        sign = "-" if self.unscaled < 0 else ""
        coefficient = str(abs(self.unscaled))
        if self.scale == 0:
            return sign + coefficient
        adjusted = len(coefficient) - 1 - self.scale
        if self.scale > 0 and adjusted >= -6:
            if len(coefficient) > self.scale:
                return f"{sign}{coefficient[: -self.scale]}.{coefficient[-self.scale :]}"
            return f"{sign}0.{'0' * (self.scale - len(coefficient))}{coefficient}"
        mantissa = coefficient[0] + (f".{coefficient[1:]}" if len(coefficient) > 1 else "")
        return f"{sign}{mantissa}E{'+' if adjusted > 0 else ''}{adjusted}"


@functools.lru_cache(maxsize=4096)
def _to_double(unscaled: int, scale: int) -> float:
    if unscaled == 0:
        return 0.0
    adjusted = len(str(abs(unscaled))) - 1 - scale
    if adjusted > 309:
        return float("inf") if unscaled > 0 else float("-inf")
    if adjusted < -330:
        return 0.0 if unscaled > 0 else -0.0
    return float(BigDecimal(unscaled, scale).value)


# Quantity.indexOfUnit: the characters that start a format.
_UNIT_START = frozenset("eEinumkKMGTP")
# new BigDecimal(String) without an exponent (an amount never holds `e` or `E`): any Unicode digits.
_AMOUNT = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")
_DECIMAL64_DIGITS = 16


def _decimal64(exact: int) -> BigDecimal:
    """A positive integer rounded to 16 significant digits, half-even, as `doRound(.., DECIMAL64)`."""
    digits = len(str(exact))
    if digits <= _DECIMAL64_DIGITS:
        return BigDecimal(exact, 0)
    drop = digits - _DECIMAL64_DIGITS
    quotient, remainder = divmod(exact, 10**drop)
    half = 5 * 10 ** (drop - 1)
    if remainder > half or (remainder == half and quotient % 2 == 1):
        quotient += 1
    return BigDecimal(quotient, -drop)


def _power_of_ten(exponent: int) -> BigDecimal:
    """`new BigDecimal("10").pow(exponent, DECIMAL64)`: exact up to 10^15, then 1.000000000000000E+n;
    a negative power is its exact reciprocal, 1 with the scale `-exponent`."""
    if exponent < 0:
        return BigDecimal(1, -exponent)
    if exponent < _DECIMAL64_DIGITS:
        return BigDecimal(10**exponent, 0)
    return BigDecimal(10 ** (_DECIMAL64_DIGITS - 1), _DECIMAL64_DIGITS - 1 - exponent)


# Quantity.getMultiple: each named format's multiple, as BigDecimal.pow(n, DECIMAL64) leaves it.
_NAMED: dict[str, BigDecimal] = {"": BigDecimal(1, 0)}
for _name, _power in (("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)):
    _NAMED[_name] = _decimal64(2**_power)
_DECIMAL_FORMATS = (("n", -9), ("u", -6), ("m", -3), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18))
for _name, _exponent in _DECIMAL_FORMATS:
    _NAMED[_name] = _power_of_ten(_exponent)


def _split(text: str) -> tuple[str, str]:
    """`Quantity.parse`: (amount, format); Fabric8Error where fabric8 refuses the text."""
    if not text:
        raise Fabric8Error("Invalid quantity string format passed.")
    index = next((i for i, c in enumerate(text) if c in _UNIT_START), len(text))
    amount, fmt = text[:index], text[index:]
    if any(c.isdecimal() for c in fmt) and fmt[-1].isalpha():
        raise Fabric8Error("Invalid quantity string format passed")
    return amount, fmt


def _amount(text: str) -> BigDecimal:
    """`new BigDecimal(amount)` for an amount without an exponent."""
    match = _AMOUNT.fullmatch(text)
    if match is None or not (match.group(2) or match.group(3)):
        bad = next((c for c in text if not (c.isdecimal() or c in "+-.")), None)
        if bad is not None:
            raise Fabric8Error(
                f'Character {bad} is neither a decimal digit number, decimal point, nor "e" notation exponential mark.'
            )
        raise Fabric8Error(f"{text!r} is not a decimal number")
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    unscaled = int(whole + fraction) if whole + fraction else 0
    return BigDecimal(-unscaled if sign == "-" else unscaled, len(fraction))


def _multiple(fmt: str) -> BigDecimal:
    """`Quantity.getMultiple`."""
    if any(c.isdecimal() for c in fmt) and len(fmt) > 1:
        try:
            exponent = parse_java_int(fmt[1:])
        except JavaNumberFormatError as exc:
            raise Fabric8Error(str(exc)) from None
        return _power_of_ten(exponent)
    multiple = _NAMED.get(fmt)
    if multiple is None:
        raise Fabric8Error("Invalid quantity format passed to parse")
    return multiple


# Texts up to this length are cached (a quantity has a few characters, and every review of a FlinkDeployment
# reads the same ones again); longer ones are computed each time, so a tenant cannot pin megabytes.
_CACHED_CHARS = 64


def numerical_amount(text: str) -> BigDecimal:
    """`Quantity.parse(text).getNumericalAmount()`; Fabric8Error where fabric8 throws."""
    if len(text) <= _CACHED_CHARS:
        return _cached_numerical_amount(text)
    return _numerical_amount(text)


def _numerical_amount(text: str) -> BigDecimal:
    if len(text) > MAX_QUANTITY_CHARS:
        raise Fabric8Error(f"{len(text):,} characters; flinkmem reads quantities of up to {MAX_QUANTITY_CHARS:,}")
    amount, fmt = _split(text)
    digit = _amount(amount)
    multiple = _multiple(fmt)
    return BigDecimal(digit.unscaled * multiple.unscaled, digit.scale + multiple.scale)


_cached_numerical_amount = functools.lru_cache(maxsize=4096)(_numerical_amount)


_JAVA_WS = re.compile(r"[ \t\n\x0b\f\r]")


@dataclass(frozen=True)
class OperatorMemory:
    """A memory string as the operator hands it to Flink: the text Flink reads and its bytes."""

    text: str  # what the operator writes into the configuration (MemorySize or BigDecimal text)
    size: int  # bytes, as Flink reads `text`
    quantity_fallback: bool  # read as a Kubernetes quantity because Flink's own syntax refused it


def operator_memory(text: str) -> OperatorMemory:
    """`parseResourceMemoryString(text)`, then Flink reading the result; ValueError where either fails."""
    if len(text) <= _CACHED_CHARS:
        return _cached_operator_memory(text)
    return _operator_memory(text)


def _operator_memory(text: str) -> OperatorMemory:
    try:
        return OperatorMemory(text, parse_memory_size(text), False)
    except SizeParseError:
        pass
    normalized = _JAVA_WS.sub("", java_trim(text)).upper()
    if normalized.endswith("B"):
        normalized = normalized[:-1]
    if normalized.endswith("I"):
        normalized = normalized[:-1] + "i"
    try:
        written = str(numerical_amount(normalized))
    except Fabric8Error as exc:
        raise ValueError(
            f"{text!r} is neither a Flink size (like 2g or 1600m) nor a Kubernetes quantity (like 2Gi): {exc}"
        ) from None
    try:
        return OperatorMemory(written, parse_memory_size(written), True)
    except SizeParseError:
        raise ValueError(
            f"{text!r} is not a whole, non-negative number of bytes: the operator hands Flink {written!r}, "
            "which Flink cannot read; write it like 1536m, 2g or 2Gi"
        ) from None


_cached_operator_memory = functools.lru_cache(maxsize=4096)(_operator_memory)


def operator_memory_bytes(text: str) -> int:
    """A memory string (`resource.memory`, a `resources` memory quantity) in bytes, as the operator
    and then Flink read it; ValueError naming what is wrong."""
    return operator_memory(text).size
