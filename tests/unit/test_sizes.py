"""Byte sizes as Flink's `MemorySize` parses, combines and scales them (memory-model notes, section 3,
and the vectors of Flink's own MemorySizeTest, section 12.3)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from flinkmem.engine import sizes
from flinkmem.engine.sizes import (
    GIB,
    KIB,
    MAX_BYTES,
    MIB,
    TIB,
    SizeOverflow,
    SizeParseError,
    checked_add,
    checked_sub,
    format_size,
    mebibytes_int32,
    multiply,
    parse_memory_size,
)
from tests.support.budget import cpu_deadline

FLOAT_0_1_WIDENED = 0.10000000149011612  # 0.1f as Flink widens it to double
FLOAT_0_2_WIDENED = 0.20000000298023224


def test_constants() -> None:
    assert (KIB, MIB, GIB, TIB) == (1024, 1024**2, 1024**3, 1024**4)
    assert MAX_BYTES == 9223372036854775807


# ---------------------------------------------------------------------------------------------
# parse_memory_size


@pytest.mark.parametrize("text", ["1234", "1234b", "1234 b", "1234bytes", "1234 bytes"])
def test_parse_bytes(text: str) -> None:
    assert parse_memory_size(text) == 1234


@pytest.mark.parametrize(
    ("unit_names", "multiplier"),
    [
        (("k", "kb", "kibibytes"), KIB),
        (("m", "mb", "mebibytes"), MIB),
        (("g", "gb", "gibibytes"), GIB),
        (("t", "tb", "tebibytes"), TIB),
    ],
)
def test_parse_units_with_and_without_space(unit_names: tuple[str, ...], multiplier: int) -> None:
    for unit in unit_names:
        assert parse_memory_size(f"667766{unit}") == 667766 * multiplier
        assert parse_memory_size(f"667766 {unit}") == 667766 * multiplier


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 B", 1),
        ("1 K", KIB),
        ("1 M", MIB),
        ("1 G", GIB),
        ("1 T", TIB),
        ("1 KiBiBytes", KIB),
        ("2 GB", 2 * GIB),
        ("      155      ", 155),
        ("      155      bytes   ", 155),
        ("  1600 MB  ", 1600 * MIB),
        ("1600 m", 1600 * MIB),
        ("1600m", 1677721600),
        ("\t1600m\n", 1600 * MIB),
        ("1600\tm", 1600 * MIB),
        ("0001600m", 1600 * MIB),
        ("0", 0),
        ("0 t", 0),
        ("1\u212a", KIB),  # Kelvin sign lower-cases to 'k'
        ("9223372036854775807", MAX_BYTES),
        ("8388607t", 9223370937343148032),
        ("2500001k", 2560001024),
        ("1677721600", 1677721600),
    ],
)
def test_parse_valid(text: str, expected: int) -> None:
    assert parse_memory_size(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "     ",
        "\t\n",
        "foobar",
        "16 gjah",
        "16 16 17 18 bytes",
        "-100 bytes",
        "+1600m",
        "1.5g",
        ".5g",
        "1600mib",
        "1600 kib",
        "1 gib",
        "1 kilobytes",
        "1p",
        "1600 m b",
        "abc",
        "[1600m]",
        "1_677_721_600",
        "1.6777216E9",
        "١٦٠٠m",  # Arabic-Indic digits are not ASCII digits
        "\u00a01600m",  # no-break space is not trimmed, so no leading digit
        "1600m\u00a0",  # ... and stays in the unit
        "100000000000000000000000000000000 bytes",
        "100000000000000 tb",
        "99999999999t",
        "9223372036854775808",
        "8388608t",
        "8796093022208m",
        "99999999999999999999",
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(SizeParseError):
        parse_memory_size(text)


def test_parse_error_carries_reason() -> None:
    with pytest.raises(SizeParseError) as info:
        parse_memory_size("1600mib")
    assert info.value.reason
    assert "mib" in info.value.reason


def test_parse_many_leading_zeros() -> None:
    # Long.parseLong accepts any number of leading zeros; "000…0001600m" is 1600 MiB to Flink.
    assert parse_memory_size("0" * 5000 + "1600m") == 1600 * MIB


def test_parse_very_long_number_is_overflow_not_crash() -> None:
    with pytest.raises(SizeParseError):
        parse_memory_size("9" * 5000)


# ---------------------------------------------------------------------------------------------
# checked arithmetic


def test_checked_add() -> None:
    assert checked_add(1, 2, 3) == 6
    assert checked_add() == 0
    assert checked_add(MAX_BYTES - 5, 5) == MAX_BYTES
    with pytest.raises(SizeOverflow):
        checked_add(MAX_BYTES, 1)
    with pytest.raises(SizeOverflow):
        checked_add(MAX_BYTES - 10, 5, 6)


def test_checked_sub() -> None:
    assert checked_sub(7, 5) == 2
    assert checked_sub(5, 5) == 0
    with pytest.raises(SizeOverflow):
        checked_sub(5, 7)


# ---------------------------------------------------------------------------------------------
# multiply: exact product with Double.toString(factor), truncated


@pytest.mark.parametrize(
    ("size", "factor", "expected"),
    [
        # 1600m * 0.1f = 167772162.500000001... -> 167772162 (notes, section 3.2)
        (1677721600, FLOAT_0_1_WIDENED, 167772162),
        # 2g * 0.1f = 214748368.0000000013 -> 214748368 (notes, section 5.9)
        (2147483648, FLOAT_0_1_WIDENED, 214748368),
        (3145728000, FLOAT_0_1_WIDENED, 314572804),
        # 1600m * 0.2f (C72) -> 335544325
        (1677721600, FLOAT_0_2_WIDENED, 335544325),
        # flink 2g + metaspace 256m times the inverse fraction of 0.1f (C08) -> 268435460
        (2415919104, 0.11111111295076065, 268435460),
        (1000, 0.0, 0),
        (1000, -0.0, 0),
        (1000, 1.0, 1000),
        (7, 0.5, 3),
        (MAX_BYTES, 1.0, MAX_BYTES),
        (MAX_BYTES, 0.5, MAX_BYTES // 2),
    ],
)
def test_multiply(size: int, factor: float, expected: int) -> None:
    assert multiply(size, factor) == expected


def test_multiply_uses_decimal_text_not_binary_value() -> None:
    # 0.3 as a binary double is 0.29999999999999998889...; Flink multiplies by the text "0.3".
    assert multiply(10**18, 0.3) == 3 * 10**17
    assert int(Fraction(0.3) * 10**18) == 299999999999999988


def test_multiply_truncates_exactly_beyond_28_digits() -> None:
    # (10^18 + 1) * 0.9999999999999999 = 999999999999999900.9999999999999999 exactly: the default
    # 28-digit decimal context would round it up to ...901 before truncation.
    size = 10**18 + 1
    assert Fraction(size) * Fraction("0.9999999999999999") == Fraction("999999999999999900.9999999999999999")
    assert Decimal(size) * Decimal("0.9999999999999999") == Decimal("999999999999999901")
    assert multiply(size, 0.9999999999999999) == 999999999999999900


def test_multiply_overflow() -> None:
    with pytest.raises(SizeOverflow):
        multiply(MAX_BYTES, 1.5)
    with pytest.raises(SizeOverflow):
        # C58: (1000t + 256m) times the inverse fraction of 0.9999999 as float32
        multiply(1000 * TIB + 256 * MIB, 8388607.0)


@pytest.mark.parametrize("factor", [-0.5, -1e-300, float("nan"), float("-inf")])
def test_multiply_refuses_negative_or_nan_factors(factor: float) -> None:
    with pytest.raises(ValueError):
        multiply(1000, factor)


# ---------------------------------------------------------------------------------------------
# getMebiBytes


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, 0),
        (MIB - 1, 0),
        (1600 * MIB, 1600),
        (2628430511, 2506),  # flink 2000m: 2506.67 MiB, floored (notes, section 11)
        (1000000001, 953),
        (2 * TIB + 10, 2097152),  # MemorySizeTest
        ((2**31 - 1) * MIB + MIB - 1, 2**31 - 1),
        (2048 * TIB, -(2**31)),  # 2^31 MiB wraps to Integer.MIN_VALUE
        (4096 * TIB, 0),  # 2^32 MiB wraps to 0 (notes, section 11)
        (4097 * TIB, 1 << 20),
        (MAX_BYTES, -1),  # 2^43 - 1 MiB, low 32 bits all ones
    ],
)
def test_mebibytes_int32(size: int, expected: int) -> None:
    assert mebibytes_int32(size) == expected


# ---------------------------------------------------------------------------------------------
# format_size: flinkmem's own short human form


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 bytes"),
        (1, "1 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KiB"),
        (1536, "1.50 KiB (1536 bytes)"),
        (1152, "1.13 KiB (1152 bytes)"),  # 1.125 rounds half up
        (128 * MIB, "128 MiB"),
        (134217727, "128.00 MiB (134217727 bytes)"),
        (1677721600, "1.56 GiB (1677721600 bytes)"),
        (GIB, "1 GiB"),
        (1600 * TIB, "1600 TiB"),
    ],
)
def test_format_size(size: int, expected: str) -> None:
    assert format_size(size) == expected


def test_long_sizes_in_linear_time() -> None:
    # MemorySize.parse skips any number of leading zeros and refuses more than 19 significant digits.
    with cpu_deadline("sizes of a million characters"):
        assert parse_memory_size("0" * 1_000_000 + "16m") == 16 * MIB
        assert parse_memory_size(" " * 1_000_000 + "1 kb" + "\t" * 1_000_000) == 1024
        with pytest.raises(SizeParseError, match=r"the number 11111111111111111111…\(1000000 digits\) does not fit"):
            parse_memory_size("1" * 1_000_000 + "m")
        with pytest.raises(SizeParseError):
            parse_memory_size("1" + "x" * 1_000_000)


def test_only_short_sizes_are_cached() -> None:
    # Padded sizes are valid; caching them would let a tenant pin megabytes per entry.
    before = sizes._cached_memory_size.cache_info().currsize
    for padding in range(1, 50):
        assert parse_memory_size("0" * (100 + padding) + "1m") == MIB
    assert sizes._cached_memory_size.cache_info().currsize == before
    parse_memory_size("12345m")
    assert sizes._cached_memory_size.cache_info().currsize <= before + 1
