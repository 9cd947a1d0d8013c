"""Java's text-to-number rules, as Flink's configuration converters apply them.

Flink reads option values with `String.trim`, `Float.parseFloat`, `Double.parseDouble`,
`Integer.parseInt` and `Double.toString`. Python's built-ins differ from each of them at the edges
(whitespace, underscores, `inf`/`nan` spellings, hex floats, type suffixes, float32 rounding), and
those edges decide whether Flink accepts a configuration, so they are reproduced here exactly.

Java reads numbers of any length: `Double.parseDouble` takes any number of digits and rounds them
correctly (it keeps 1100 significant digits and a sticky one for the rest), and `Integer.parseInt`
takes any number of leading zeros. So do these functions, at every length, in linear time: every
grammar is matched by a regular expression in linear time (each quantifier followed only by
characters it cannot match), only the significant digits that can decide a
rounding are converted (1200 decimal or 40 hexadecimal digits, plus a sticky digit for the rest),
and integers are measured before they are converted. There is no length cap here: whatever Java
accepts is accepted, whatever it refuses is refused; bounding the size of a whole input is the
caller's business.
"""

from __future__ import annotations

import functools
import math
import re
import struct
import unicodedata
from decimal import Decimal
from fractions import Fraction

__all__ = [
    "JavaNumberFormatError",
    "float32_from_double",
    "java_double_to_string",
    "java_trim",
    "parse_java_double",
    "parse_java_float",
    "parse_java_int",
    "parse_java_long",
    "round_to_binary",
]


class JavaNumberFormatError(ValueError):
    """The text is not a number in the grammar Java accepts."""


# What `String.trim()` removes: every character at or below U+0020.
_TRIMMED = "".join(map(chr, range(0x21)))


def java_trim(text: str) -> str:
    """`String.trim()`: strips every character at or below U+0020 from both ends, nothing else."""
    return text.strip(_TRIMMED)


# Java's decimal grammar for Float/Double.parseFloat (FloatingDecimal.readJavaFormatString):
# digits with at most one point and at least one digit (checked after the match), an optional
# exponent with mandatory digits, and one optional type suffix as the very last character. ASCII
# digits only. Every quantifier is followed by characters it cannot match, so a failed match backtracks
# one step per character: linear time whatever the text. No possessive groups: Debian bookworm's
# Python (3.11.2) gets them wrong (`1e` was read as 1.0 there; Java refuses it).
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?[fFdD]?", re.ASCII)
# `0x`, hex digits with at most one point and at least one digit, then a binary exponent `p<digits>`.
_HEX = re.compile(r"([+-]?+)0[xX]([0-9a-fA-F]*+)(?:\.([0-9a-fA-F]*+))?+[pP]([+-]?+[0-9]++)[fFdD]?+", re.ASCII)
_SPECIAL = re.compile(r"([+-]?)(NaN|Infinity)")

# float32 and float64 layouts: significand bits (with the hidden bit) and the smallest normal exponent.
_FLOAT32 = (24, -126)
_FLOAT64 = (53, -1022)


def round_to_binary(value: Fraction, bits: int, min_exp: int) -> float:
    """Rounds an exact value to the nearest binary float of the given layout, ties to even.

    Returns a Python float holding exactly that value (inf on overflow, 0.0 on underflow), which is
    how Java rounds decimal or hex text straight to float32 or float64 without double rounding.
    """
    if value == 0:
        return 0.0
    negative = value < 0
    magnitude = -value if negative else value
    num, den = magnitude.numerator, magnitude.denominator
    exp = num.bit_length() - den.bit_length()
    if Fraction(2) ** exp > magnitude:
        exp -= 1
    max_exp = -min_exp + 1
    if exp > max_exp:
        return -math.inf if negative else math.inf
    quantum_exp = max(exp, min_exp) - (bits - 1)
    scaled = magnitude / (Fraction(2) ** quantum_exp)
    mantissa = math.floor(scaled)
    remainder = scaled - mantissa
    if remainder > Fraction(1, 2) or (remainder == Fraction(1, 2) and mantissa % 2 == 1):
        mantissa += 1
    if mantissa >= 1 << bits:
        mantissa >>= 1
        quantum_exp += 1
    if quantum_exp + bits - 1 > max_exp:
        return -math.inf if negative else math.inf
    result = math.ldexp(float(mantissa), quantum_exp)
    return -result if negative else result


def _parse_java_floating(text: str, layout: tuple[int, int]) -> float:
    bits, min_exp = layout
    trimmed = java_trim(text)
    special = _SPECIAL.fullmatch(trimmed)
    if special:
        sign = -1.0 if special.group(1) == "-" else 1.0
        return math.nan if special.group(2) == "NaN" else sign * math.inf
    hexm = _HEX.fullmatch(trimmed)
    if hexm and (hexm.group(2) or hexm.group(3)):
        sign_text, whole, frac, exp_text = hexm.groups()
        return _parse_hex(sign_text == "-", whole, frac or "", exp_text, bits, min_exp)
    decm = _DECIMAL.fullmatch(trimmed)
    if not decm or not (decm.group(2) or decm.group(3)):
        raise JavaNumberFormatError(f'For input string: "{trimmed}"' if trimmed else "empty String")
    sign_text, int_part, frac_part, exp_text = decm.groups()
    frac_part = frac_part or ""
    if len(int_part) + len(frac_part) <= _QUICK_DIGITS and (exp_text is None or len(exp_text) <= 4):
        quick = _quick_decimal(f"{sign_text}{int_part}.{frac_part}e{exp_text or 0}", bits)
        if quick is not None:
            return quick
    digits = int_part + frac_part
    exponent = (_bounded_int(exp_text) if exp_text else 0) - len(frac_part)
    # Trailing zeros move into the exponent and leading zeros vanish, so that Python's limit on
    # converting long digit strings only applies to numbers with that many significant digits.
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    significant = stripped.lstrip("0")
    if len(significant) > _KEPT_DIGITS:
        # Java keeps 1100 digits and a sticky one; more cannot change a float32/float64 result.
        # (The text has no trailing zeros now, so the digits cut off are not all zeros.)
        exponent += len(significant) - _KEPT_DIGITS
        significant = significant[:_KEPT_DIGITS] + "1"
        exponent -= 1
    mantissa = int(significant) if significant else 0
    return _round_scaled(sign_text == "-", mantissa, 10, exponent, bits, min_exp)


# Significant digits that can decide a rounding to float64: 767 decimal digits suffice, Java keeps
# 1100; 40 hex digits are 157 bits or more, far past the 53 of a double and its rounding bit.
_KEPT_DIGITS = 1200
_KEPT_HEX_DIGITS = 40


def _parse_hex(negative: bool, whole: str, frac: str, exp_text: str, bits: int, min_exp: int) -> float:
    """A hex float's value, rounded once: only its leading hex digits and a sticky bit are converted."""
    digits = (whole + frac).lstrip("0")
    exponent = _bounded_int(exp_text) - 4 * len(frac)
    sticky = False
    if len(digits) > _KEPT_HEX_DIGITS:
        dropped = digits[_KEPT_HEX_DIGITS:]
        exponent += 4 * len(dropped)
        sticky = bool(dropped.strip("0"))
        digits = digits[:_KEPT_HEX_DIGITS]
    mantissa = int(digits or "0", 16)
    if sticky:
        # Anything non-zero below the kept digits only ever pushes a tie upward: a 1 bit far
        # below the rounding position says exactly that.
        mantissa = mantissa << 1 | 1
        exponent -= 1
    return _round_scaled(negative, mantissa, 2, exponent, bits, min_exp)


# Short decimals take a fast path through the platform's own correctly rounded conversions.
_QUICK_DIGITS = 40
_FLOAT32_STRUCT = struct.Struct("<f")


def _quick_decimal(text: str, bits: int) -> float | None:
    """The float64 or float32 value of a short decimal, or None where only the exact path is safe.

    `float()` rounds decimal text correctly to float64, as Java does. Rounding that double once more
    to float32 gives what Java's direct rounding gives, except when the double sits exactly on a
    float32 midpoint, where the first rounding may have moved the value onto the tie.
    """
    double = float(text)
    if bits == _FLOAT64[0]:
        return double
    if _on_float32_midpoint(double):
        return None
    return _to_float32(double)


def _on_float32_midpoint(value: float) -> bool:
    if value == 0 or math.isinf(value):
        return False
    lead = math.frexp(value)[1] - 1
    quantum_exp = max(lead, _FLOAT32[1]) - (_FLOAT32[0] - 1)
    halves = math.ldexp(abs(value), 1 - quantum_exp)
    return halves.is_integer() and int(halves) % 2 == 1


def _to_float32(value: float) -> float:
    """The C `(float)` conversion (nearest, ties to even), which is also Java's; inf past the range."""
    try:
        return float(_FLOAT32_STRUCT.unpack(_FLOAT32_STRUCT.pack(value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _bounded_int(text: str) -> int:
    """An exponent, saturated far outside any float range (Java saturates such exponents too)."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    return sign * (10**9 if len(digits) > 9 else int(digits))


def _round_scaled(negative: bool, mantissa: int, base: int, exponent: int, bits: int, min_exp: int) -> float:
    """Rounds mantissa * base**exponent, short-cutting exponents far outside the float range."""
    if mantissa == 0:
        return -0.0 if negative else 0.0
    # log2 of the value, to within a couple of units; exact powers beyond these bounds would only
    # cost time (Java saturates such exponents the same way).
    approx_log2 = mantissa.bit_length() + exponent * math.log2(base)
    if approx_log2 > -min_exp + 8:
        return -math.inf if negative else math.inf
    if approx_log2 < min_exp - bits - 8:
        return -0.0 if negative else 0.0
    exact = Fraction(mantissa) * Fraction(base) ** exponent
    result = round_to_binary(exact, bits, min_exp)
    return -result if negative else result


def parse_java_float(text: str) -> float:
    """`Float.parseFloat`: the float32 value, widened to a Python float (exactly, as Java widens)."""
    return _parse_java_floating(text, _FLOAT32)


def parse_java_double(text: str) -> float:
    """`Double.parseDouble`."""
    return _parse_java_floating(text, _FLOAT64)


def float32_from_double(value: float) -> float:
    """The `(float)` cast of a double: round to nearest float32, ties to even."""
    if math.isnan(value) or math.isinf(value) or value == 0:
        return value
    return _to_float32(value)


# `Character.digit(c, 10)` accepts every decimal digit (Unicode category Nd) that is one UTF-16 unit;
# digits outside the BMP are two surrogates to Java, which are no digits. Possessive: no backtracking.
_INT = re.compile(r"[+-]?+\d++")
_DOUBLE_MIN = 5e-324
_BMP_MAX = "\uffff"


@functools.cache
def _unicode_zeros() -> str:
    """Every decimal digit zero of the BMP (`0`, `٠`, `०`, ...), which parseInt skips as leading zeros."""
    return "".join(c for c in map(chr, range(0x10000)) if c.isdecimal() and unicodedata.decimal(c) == 0)


def _parse_java_integer(text: str, bits: int) -> int:
    if not _INT.fullmatch(text) or (not text.isascii() and max(text) > _BMP_MAX):
        raise JavaNumberFormatError(f'For input string: "{text}"')
    negative = text.startswith("-")
    body = text[1:] if text[:1] in "+-" else text
    digits = body.lstrip("0" if body.isascii() else _unicode_zeros()) or "0"
    # Measured before converting: any more digits than these cannot fit, however long the text.
    if len(digits) > (10 if bits == 32 else 19):
        raise JavaNumberFormatError(f'For input string: "{text}"')
    value = -int(digits) if negative else int(digits)
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise JavaNumberFormatError(f'For input string: "{text}"')
    return value


def parse_java_int(text: str) -> int:
    """`Integer.parseInt`: an optional sign and decimal digits (any Unicode digits), no spaces."""
    return _parse_java_integer(text, 32)


def parse_java_long(text: str) -> int:
    """`Long.parseLong`: as `parse_java_int`, in 64 bits."""
    return _parse_java_integer(text, 64)


def java_double_to_string(value: float) -> str:
    """`Double.toString`: shortest round-trip digits, plain for 1e-3 <= |x| < 1e7, else `d.dddE±n`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if abs(value) == _DOUBLE_MIN:
        # JDK 17 prints the smallest subnormal with two digits where the shortest form has one.
        return "-4.9E-324" if value < 0 else "4.9E-324"
    return _finite_double_to_string(value)


# Only non-zero finite values get here, and no two of those compare equal unless they are the same
# double, so caching by value is exact (0.0 and -0.0, which are equal, never reach it).
@functools.lru_cache(maxsize=1024)
def _finite_double_to_string(value: float) -> str:
    sign, digit_tuple, exp = Decimal(repr(value)).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    # Position of the decimal point relative to the first digit (scientific exponent).
    sci_exp = len(digit_tuple) + exp - 1
    prefix = "-" if sign else ""
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        if sci_exp >= 0:
            whole = digits[: sci_exp + 1].ljust(sci_exp + 1, "0")
            frac = digits[sci_exp + 1 :] or "0"
        else:
            whole = "0"
            frac = "0" * (-sci_exp - 1) + digits
        return f"{prefix}{whole}.{frac}"
    return f"{prefix}{digits[0]}.{digits[1:] or '0'}E{sci_exp}"
