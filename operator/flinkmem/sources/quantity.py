"""Kubernetes resource quantities (`512Mi`, `2G`, `1e6`) as byte counts.

Used for memory limits in pod templates and for the Apache operator's fallback parsing of
`spec.jobManager.resource.memory`. Quantities are exact decimals; memory limits round up to whole
bytes as the API server does.

Kubernetes reads quantities of any length; flinkmem refuses one longer than `MAX_QUANTITY_CHARS`
(4,096 characters: real quantities have a few dozen), since its exact value would cost quadratic
time in Python's big-integer conversions. Shorter ones are matched without backtracking and
converted without Python's `Fraction` text parser.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["QuantityError", "format_mebibytes", "parse_quantity"]


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
MAX_QUANTITY_CHARS = 4096
# Sign, digits with at most one point (at least one digit, checked after the match), then a decimal
# exponent or a suffix. Possessive quantifiers, each followed only by characters it cannot match.
_QUANTITY = re.compile(r"([+-]?+)([0-9]*+)(?:\.([0-9]*+))?+(?:[eE]([+-]?+[0-9]++)|([a-zA-Z]*+))", re.ASCII)
_MAX_EXPONENT = 30


def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity string, e.g. `1.5Gi` -> 1610612736."""
    stripped = text.strip()
    if len(stripped) > MAX_QUANTITY_CHARS:
        raise QuantityError(
            f"{stripped[:20]!r}… has {len(stripped):,} characters; flinkmem reads quantities of up to "
            f"{MAX_QUANTITY_CHARS:,} characters"
        )
    match = _QUANTITY.fullmatch(stripped)
    if not match or not (match.group(2) or match.group(3)):
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (for example 512Mi or 2Gi)")
    sign, whole, fraction, exponent, suffix = match.groups()
    fraction = fraction or ""
    value = Fraction(int(whole + fraction or "0"), 10 ** len(fraction))
    if exponent is not None:
        power_digits = exponent.lstrip("+-").lstrip("0")
        if len(power_digits) > 2 or int(power_digits or "0") > _MAX_EXPONENT:
            raise QuantityError(f"{text!r} has an exponent outside what Kubernetes accepts")
        power = -int(power_digits or "0") if exponent.startswith("-") else int(power_digits or "0")
        value *= Fraction(10) ** power
    else:
        if suffix not in _SUFFIXES:
            raise QuantityError(f"{text!r} has the unknown suffix {suffix!r}; use Ki, Mi, Gi, Ti or k, M, G, T")
        value *= _SUFFIXES[suffix or ""]
    return -value if sign == "-" else value


def quantity_bytes(text: str) -> int:
    """A memory quantity in whole bytes, rounded up."""
    return math.ceil(parse_quantity(text))


def format_mebibytes(mebibytes: int) -> str:
    return f"{mebibytes}Mi"
