"""Java's text-to-number rules (`String.trim`, `Float.parseFloat`, `Double.parseDouble`,
`Integer.parseInt`, `Double.toString`) as Flink's configuration converters apply them.

Expected values come from the Java language rules and the memory-model notes (sections 3.1, 4.1,
4.4 and 11); float32 results are written as IEEE bit patterns so they do not depend on the code
under test.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from flinkmem.engine.javatext import (
    JavaNumberFormatError,
    float32_from_double,
    java_double_to_string,
    java_trim,
    parse_java_double,
    parse_java_float,
    parse_java_int,
    parse_java_long,
    round_to_binary,
)


def f32(bits: int) -> float:
    """The float32 with the given IEEE bit pattern, widened to a Python float (exactly)."""
    value: float = struct.unpack(">f", bits.to_bytes(4, "big"))[0]
    return value


def bits32(value: float) -> int:
    """The bit pattern of a value that is exactly representable as float32."""
    packed = struct.pack(">f", value)
    assert struct.unpack(">f", packed)[0] == value or math.isnan(value), "not a float32 value"
    return int.from_bytes(packed, "big")


# ---------------------------------------------------------------------------------------------
# java_trim


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  1600m  ", "1600m"),
        ("\t1600m\n", "1600m"),
        ("\r\n 1600m \x0b\x0c", "1600m"),
        ("\x001600m\x1f", "1600m"),  # every control character is <= U+0020
        ("\x7f1600m", "\x7f1600m"),  # DEL is above U+0020
        ("\u00a01600m\u00a0", "\u00a01600m\u00a0"),  # no-break space is not trimmed
        ("\u20031600m", "\u20031600m"),  # nor is an em space
        ("1600 m", "1600 m"),  # inner whitespace stays
        ("", ""),
        ("   ", ""),
    ],
)
def test_java_trim(text: str, expected: str) -> None:
    assert java_trim(text) == expected


# ---------------------------------------------------------------------------------------------
# Float.parseFloat


FLOAT_0_1 = 0x3DCCCCCD
FLOAT_0_2 = 0x3E4CCCCD
FLOAT_0_3 = 0x3E99999A


@pytest.mark.parametrize(
    ("text", "expected_bits"),
    [
        ("0.1", FLOAT_0_1),
        (" 0.1 ", FLOAT_0_1),
        ("\t0.3\n", FLOAT_0_3),
        ("0.1f", FLOAT_0_1),
        ("0.1F", FLOAT_0_1),
        ("0.1D", FLOAT_0_1),
        ("0.1d", FLOAT_0_1),
        (".5", 0x3F000000),
        ("5.", 0x40A00000),
        ("1e-1", FLOAT_0_1),
        ("1E-1", FLOAT_0_1),
        ("1.e-1", FLOAT_0_1),
        ("0x1p-3", 0x3E000000),
        ("0X1.8P-1f", 0x3F400000),
        ("0x.8p1", 0x3F800000),
        ("-0x1p0", 0xBF800000),
        ("+0.25", 0x3E800000),
        ("0.2", FLOAT_0_2),
        ("-0.0", 0x80000000),
        ("0", 0x00000000),
        ("000000.5000000", 0x3F000000),
        ("3.4028235e38", 0x7F7FFFFF),  # Float.MAX_VALUE
        ("1.4e-45", 0x00000001),  # Float.MIN_VALUE, a subnormal
        ("1.1754943508222875e-38", 0x00800000),  # Float.MIN_NORMAL
        ("3.5e38", 0x7F800000),  # overflow -> +Infinity, silently
        ("-3.5e38", 0xFF800000),
        ("1e-46", 0x00000000),  # underflow -> 0, silently
        ("1e-50", 0x00000000),
        ("1e99999999999999999999", 0x7F800000),
        ("Infinity", 0x7F800000),
        ("+Infinity", 0x7F800000),
        ("-Infinity", 0xFF800000),
    ],
)
def test_parse_java_float_accepts(text: str, expected_bits: int) -> None:
    assert bits32(parse_java_float(text)) == expected_bits


def test_parse_java_float_rounds_directly_to_float32() -> None:
    # The text lies just below the midpoint between the float32 values 0x3f800001 and 0x3f800002.
    # Java rounds the exact decimal once and gets 0x3f800001 (memory-model notes, section 4.1).
    assert bits32(parse_java_float("1.0000001788139343261718749")) == 0x3F800001
    # Read as a double first, the value lands exactly on that midpoint and the cast then rounds
    # to even: the double-rounding result Java does not produce for text.
    as_double = float("1.0000001788139343261718749")
    assert Fraction(as_double) == (Fraction(f32(0x3F800001)) + Fraction(f32(0x3F800002))) / 2
    assert bits32(float32_from_double(as_double)) == 0x3F800002


def test_parse_java_float_ties_to_even() -> None:
    # 1 + 2^-24 is exactly halfway between 1.0 (even significand) and 1 + 2^-23 (odd): 1.0 wins.
    assert Fraction("1.000000059604644775390625") == 1 + Fraction(1, 2**24)
    assert bits32(parse_java_float("1.000000059604644775390625")) == 0x3F800000
    # 1 + 3 * 2^-24 is halfway between 1 + 2^-23 (odd) and 1 + 2^-22 (even): the latter wins.
    assert Fraction("1.000000178813934326171875") == 1 + Fraction(3, 2**24)
    assert bits32(parse_java_float("1.000000178813934326171875")) == 0x3F800002


def test_parse_java_float_nan() -> None:
    assert math.isnan(parse_java_float("NaN"))
    assert math.isnan(parse_java_float("-NaN"))
    assert math.isnan(parse_java_float(" NaN "))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "nan",
        "inf",
        "infinity",
        "INFINITY",
        "NaNf",
        "Infinityf",
        "1_0",
        "0.1.2",
        "1e",
        "e1",
        "1e+",
        ".",
        ".e1",
        "+",
        "-",
        "0x1.8",  # a hex float needs its binary exponent
        "0x",
        "0xp1",
        "١",  # Arabic-Indic digit one
        "1\u00a0",  # no-break space is not trimmed
        "0.1ff",
        "0.1 f",
        "1,5",
        "abc",
    ],
)
def test_parse_java_float_rejects(text: str) -> None:
    with pytest.raises(JavaNumberFormatError):
        parse_java_float(text)


def test_parse_java_float_accepts_long_digit_strings() -> None:
    # Java reads any number of digits; Python refuses int() of more than 4300 digits by default,
    # which must not leak out as a different error or a crash.
    assert bits32(parse_java_float("0." + "0" * 5000 + "1")) == 0
    assert bits32(parse_java_float("0" * 5000 + "0.5")) == 0x3F000000
    assert bits32(parse_java_float("0.1" + "0" * 5000)) == FLOAT_0_1


# ---------------------------------------------------------------------------------------------
# Double.parseDouble


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", 0.1),
        ("  2.5  ", 2.5),
        ("1.5d", 1.5),
        ("1.5f", 1.5),  # the suffix does not change the precision
        ("0x1.8p1", 3.0),
        ("1e400", math.inf),
        ("-1e400", -math.inf),
        ("4.9e-324", 5e-324),
        ("2e-324", 0.0),
        ("3", 3.0),
        ("-Infinity", -math.inf),
        ("0.30000000000000004", 0.30000000000000004),
        ("1.0000001788139343261718749", 1.0000001788139343),
    ],
)
def test_parse_java_double(text: str, expected: float) -> None:
    assert parse_java_double(text) == expected


def test_parse_java_double_keeps_double_precision() -> None:
    # 0.1 as a double differs from 0.1f widened.
    assert parse_java_double("0.1") != f32(FLOAT_0_1)
    assert math.isnan(parse_java_double("NaN"))


@pytest.mark.parametrize("text", ["", "inf", "nan", "Infinity1", "1_000.5", "0x1p", "1.5e", "1.5dd"])
def test_parse_java_double_rejects(text: str) -> None:
    with pytest.raises(JavaNumberFormatError):
        parse_java_double(text)


# ---------------------------------------------------------------------------------------------
# (float) cast of a double


@pytest.mark.parametrize(
    ("value", "expected_bits"),
    [
        (0.1, FLOAT_0_1),
        (0.3, FLOAT_0_3),
        (0.5, 0x3F000000),
        (1.0 + 2.0**-24, 0x3F800000),  # tie -> even
        (1.0 + 3 * 2.0**-24, 0x3F800002),  # tie -> even
        (1.0 + 2.0**-24 + 2.0**-50, 0x3F800001),  # just above the tie
        (3.5e38, 0x7F800000),
        (1e-50, 0x00000000),
        (-0.0, 0x80000000),
        (2.0**-149, 0x00000001),
    ],
)
def test_float32_from_double(value: float, expected_bits: int) -> None:
    assert bits32(float32_from_double(value)) == expected_bits


def test_float32_from_double_specials() -> None:
    assert float32_from_double(math.inf) == math.inf
    assert float32_from_double(-math.inf) == -math.inf
    assert math.isnan(float32_from_double(math.nan))


def test_round_to_binary_float64_and_float32() -> None:
    assert round_to_binary(Fraction(1, 3), 53, -1022) == 1 / 3
    assert round_to_binary(Fraction(1, 10), 24, -126) == f32(FLOAT_0_1)
    assert round_to_binary(Fraction(-1, 10), 24, -126) == -f32(FLOAT_0_1)
    assert round_to_binary(Fraction(0), 24, -126) == 0.0
    assert round_to_binary(Fraction(2) ** 128, 24, -126) == math.inf
    # Just below the overflow threshold MAX + half an ulp: rounds down to MAX.
    max32 = f32(0x7F7FFFFF)
    assert round_to_binary(Fraction(max32) + Fraction(2) ** 103 - 1, 24, -126) == max32
    # Exactly on it: ties-to-even rounds up (MAX has an odd significand) to infinity.
    assert round_to_binary(Fraction(max32) + Fraction(2) ** 103, 24, -126) == math.inf


def _exact_float32(text: str) -> float:
    """The float32 nearest the decimal text's exact value, by exact rational arithmetic."""
    return round_to_binary(Fraction(Decimal(text)), 24, -126)


_FLOAT32_TIES = st.integers(min_value=1, max_value=0x7F7FFFFE).map(
    # The double halfway between a float32 and the next one up: its shortest text reads back onto the tie.
    lambda bits: repr((f32(bits) + f32(bits + 1)) / 2)
)


@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.floats(min_value=0, max_value=1, allow_nan=False).map(repr),
        _FLOAT32_TIES,
    )
)
@example("1.000000059604644775390625")
@example("3.4028235677973366E38")
@example("7.006492321624085E-46")
@example("1.401298464324817E-45")
def test_parse_java_float_fast_path_agrees_with_exact_rounding(text: str) -> None:
    if "inf" in text.lower() or "nan" in text.lower() or not Decimal(text).is_finite():
        return
    got, exact = parse_java_float(text), _exact_float32(text)
    # Fractions carry no negative zero; Java keeps the sign of the text.
    sign = -1.0 if text.startswith("-") else 1.0
    assert got == exact and math.copysign(1, got) == math.copysign(1, exact or sign), text


@given(st.integers(min_value=1, max_value=0x7F7FFFFE))
def test_float32_from_double_matches_exact_rounding_at_ties(bits: int) -> None:
    tie = (f32(bits) + f32(bits + 1)) / 2
    for value in (tie, math.nextafter(tie, 0), math.nextafter(tie, math.inf)):
        assert float32_from_double(value) == round_to_binary(Fraction(value), 24, -126)


# ---------------------------------------------------------------------------------------------
# Integer.parseInt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("+7", 7),
        ("-0", 0),
        ("-1", -1),
        ("0001024", 1024),
        ("2147483647", 2147483647),
        ("-2147483648", -2147483648),
        ("١٠٢٤", 1024),  # Character.digit accepts any Unicode decimal digit
    ],
)
def test_parse_java_int(text: str, expected: int) -> None:
    assert parse_java_int(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "+", "-", " 5", "5 ", "1024m", "1_000", "1.0", "2147483648", "-2147483649", "99999999999999999999", "0x10"],
)
def test_parse_java_int_rejects(text: str) -> None:
    with pytest.raises(JavaNumberFormatError):
        parse_java_int(text)


def test_parse_java_int_accepts_many_leading_zeros() -> None:
    # Integer.parseInt("000…0001024") is 1024 however many zeros precede it.
    assert parse_java_int("0" * 5000 + "1024") == 1024


# ---------------------------------------------------------------------------------------------
# Double.toString


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1.0"),
        (0.5, "0.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (3 * 1.1, "3.3000000000000003"),
        (1e-4, "1.0E-4"),
        (9e-4, "9.0E-4"),
        (0.0001 * 1.1, "1.1000000000000002E-4"),
        (1e-3, "0.001"),
        (0.0015, "0.0015"),
        (1e7, "1.0E7"),
        (12345678.0, "1.2345678E7"),
        (9999999.0, "9999999.0"),
        (100.0, "100.0"),
        (123456.789, "123456.789"),
        (1.6777216e9, "1.6777216E9"),
        (1e21, "1.0E21"),
        (1.5e-7, "1.5E-7"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (-1.0, "-1.0"),
        (-2.5e-5, "-2.5E-5"),
        (f32(FLOAT_0_1), "0.10000000149011612"),
        (-f32(FLOAT_0_1), "-0.10000000149011612"),
        (f32(FLOAT_0_1) / (1 - f32(FLOAT_0_1)), "0.11111111295076065"),
        (math.nan, "NaN"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (5e-324, "4.9E-324"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
    ],
)
def test_java_double_to_string(value: float, expected: str) -> None:
    assert java_double_to_string(value) == expected


def test_digits_far_beyond_the_tie_still_decide_the_rounding() -> None:
    # Exactly halfway between two float32 values, then 2000 zeros: still a tie, ties to even ...
    zeros = "0" * 2000
    assert bits32(parse_java_float("1.000000059604644775390625" + zeros)) == 0x3F800000
    # ... but a single 1 after them puts the value above the tie: round up. Java keeps a sticky digit
    # for everything past the digits it stores, so the result is the correctly rounded one.
    assert bits32(parse_java_float("1.000000059604644775390625" + zeros + "1")) == 0x3F800001
    assert bits32(parse_java_float("1.000000178813934326171875" + zeros + "1")) == 0x3F800002
    # The same for doubles: 1 + 2^-53 is the tie between 1.0 and 1 + 2^-52.
    tie = "1.00000000000000011102230246251565404236316680908203125"
    assert Fraction(tie) == 1 + Fraction(1, 2**53)
    assert parse_java_double(tie + zeros) == 1.0
    assert parse_java_double(tie + zeros + "1") == 1.0 + 2.0**-52
    # Long mantissas with compensating exponents.
    assert parse_java_float("0." + zeros + "1e2001") == 1.0
    assert parse_java_float("1" + zeros + "e-2000") == 1.0


# ---------------------------------------------------------------------------------------------
# Long digit strings: Java reads them all, in linear time here. Expected values were printed by
# Java 17 (`Double.parseDouble`, `Float.parseFloat`, `Integer.parseInt`) for the same text.


def test_very_long_decimals_round_as_java_does() -> None:
    assert parse_java_double("1." + "0" * 10_000 + "1") == 1.0
    assert parse_java_double("1" * 20_000) == math.inf
    assert parse_java_float("1" * 20_000) == math.inf
    assert parse_java_double("." + "1" * 100_000 + "e-99999999999999") == 0.0


def test_very_long_hex_floats_keep_a_sticky_bit() -> None:
    # 1 + 2^-53 (the tie between 1.0 and its successor), then 20,000 zero digits: still the tie ...
    assert parse_java_double("0x1.00000000000008" + "0" * 20_000 + "p0") == 1.0
    # ... and one non-zero digit after them lifts it above the tie.
    assert parse_java_double("0x1.00000000000008" + "0" * 20_000 + "1p0") == 1.0 + 2.0**-52
    assert parse_java_double("0x" + "f" * 20_000 + "p-80000") == 1.0
    assert parse_java_float("0x" + "f" * 20_000 + "p-80000") == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "1" * 10_000 + "x",
        "1" * 10_000 + ".5.",
        "0x" + "1" * 10_000 + "x",
        "0x" + "1" * 10_000 + ".",
        "1e" + "1" * 10_000 + "x",
    ],
)
def test_long_malformed_numbers_are_refused(text: str) -> None:
    with pytest.raises(JavaNumberFormatError):
        parse_java_double(text)
    with pytest.raises(JavaNumberFormatError):
        parse_java_float(text)


def test_parse_java_int_skips_any_decimal_zeros() -> None:
    # Character.digit gives 0 for every Unicode zero digit, so all of them are leading zeros.
    assert parse_java_int("\u0660" * 13 + "\u0661") == 1
    assert parse_java_int("-" + "\uff10" * 30 + "2147483648") == -2147483648
    assert parse_java_long("\u0966" * 3000 + "9223372036854775807") == 9223372036854775807


def test_parse_java_int_refuses_digits_outside_the_bmp() -> None:
    # MATHEMATICAL BOLD DIGIT ONE is two UTF-16 units to Java, and a surrogate is no digit.
    with pytest.raises(JavaNumberFormatError):
        parse_java_int("\U0001d7cf")
    with pytest.raises(JavaNumberFormatError):
        parse_java_long("1\U0001d7ce")


def test_java_trim_of_long_runs() -> None:
    assert java_trim(" \x00\t" * 100_000 + "a b" + "\x1f " * 100_000) == "a b"
    assert java_trim("\x00" * 1000) == ""


@pytest.mark.parametrize("text", ["1e", "1E", "1e+", "1.5e-", "E", "e1", "1ed", ".e1"])
def test_an_exponent_needs_digits(text: str) -> None:
    # Java refuses these; with possessive groups, Debian bookworm's Python 3.11.2 read `1e` as 1.0.
    with pytest.raises(JavaNumberFormatError):
        parse_java_double(text)
