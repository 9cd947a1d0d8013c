"""fabric8's Quantity and the operator's memory strings (`sources.fabric8`).

Expected values are the operator's own (its FlinkConfigBuilderTest and ResourceConfigUtilsTest on main)
and what fabric8 7.3.1/7.8.0 and Flink 1.20's MemorySize gave when run on these texts (research notes of
issue 20, §2.5); tests/differential/test_operator_resources.py runs the real classes on more.
"""

from __future__ import annotations

import pytest

from flinkmem.sources.fabric8 import BigDecimal, Fabric8Error, numerical_amount, operator_memory
from tests.support.budget import cpu_deadline

GIB = 1 << 30


@pytest.mark.parametrize(
    ("text", "decimal_text", "double"),
    [
        ("2Gi", "2147483648", 2147483648.0),
        ("500m", "0.500", 0.5),  # milli, to Kubernetes
        ("2048m", "2.048", 2.048),
        ("1.5Gi", "1610612736.0", 1610612736.0),
        ("1e6", "1000000", 1e6),
        ("129e6", "129000000", 129e6),
        ("1e15", "1000000000000000", 1e15),
        ("1e16", "1.000000000000000E+16", 1e16),  # DECIMAL64: 16 significant digits
        ("2E", "2.000000000000000E+18", 2e18),
        ("1Ei", "1.152921504606847E+18", 1.152921504606847e18),  # 2^60 rounded
        ("1e-3", "0.001", 0.001),
        ("+2Gi", "2147483648", 2147483648.0),
        ("-2Gi", "-2147483648", -2147483648.0),
        (".5Gi", "536870912.0", 536870912.0),
        ("2M5", "200000", 200000.0),  # a format with digits is ten to the power of what follows its first letter
        ("1", "1", 1.0),
    ],
)
def test_numerical_amount_as_fabric8_computes_it(text: str, decimal_text: str, double: float) -> None:
    amount = numerical_amount(text)
    assert str(amount) == decimal_text
    assert amount.to_double() == double


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2g", 'Character g is neither a decimal digit number, decimal point, nor "e" notation exponential mark.'),
        ("", "Invalid quantity string format passed."),
        ("1e3x", "Invalid quantity string format passed"),
        ("2K", "Invalid quantity format passed to parse"),  # upper-case K starts a format, but no such format
        ("1e99999999999", 'For input string: "99999999999"'),
    ],
)
def test_what_fabric8_refuses(text: str, message: str) -> None:
    with pytest.raises(Fabric8Error) as info:
        numerical_amount(text)
    assert str(info.value) == message


def test_big_decimal_text_follows_java() -> None:
    assert str(BigDecimal(123, 0)) == "123"
    assert str(BigDecimal(123, 2)) == "1.23"
    assert str(BigDecimal(1, 7)) == "1E-7"  # below 10^-6: scientific
    assert str(BigDecimal(1, 6)) == "0.000001"
    assert str(BigDecimal(12, -3)) == "1.2E+4"
    assert BigDecimal(1, -400).to_double() == float("inf")


@pytest.mark.parametrize(
    ("text", "size", "fallback"),
    [
        ("2Gi", 2 * GIB, True),
        ("2gi", 2 * GIB, True),
        ("2 Gi", 2 * GIB, True),
        ("2gib", 2 * GIB, True),
        ("2g", 2 * GIB, False),
        ("2G", 2 * GIB, False),  # binary: Flink's syntax first
        ("2048m", 2 * GIB, False),  # mebibytes, never milli
        ("512mi", 536870912, True),
        ("1536m", 1536 << 20, False),
        ("1e6", 1_000_000, True),
        ("1000000b", 1_000_000, False),
        ("100", 100, False),
        ("1k", 1024, False),
        ("1Ki", 1024, True),
        ("1T", 1 << 40, False),
        ("1e15", 10**15, True),
    ],
)
def test_operator_memory_reads_as_the_operator_then_flink_do(text: str, size: int, fallback: bool) -> None:
    memory = operator_memory(text)
    assert (memory.size, memory.quantity_fallback) == (size, fallback)


@pytest.mark.parametrize(
    ("text", "handed"),
    [
        ("1.5Gi", "1610612736.0"),
        ("1.5g", "1500000000.0"),
        ("0.5Gi", "536870912.0"),
        ("2.0Gi", "2147483648.0"),
        ("2E", "2.000000000000000E+18"),
        ("1e18", "1.000000000000000E+18"),
        ("1Ei", "1.152921504606847E+18"),
        ("-2Gi", "-2147483648"),
    ],
)
def test_what_the_operator_hands_flink_and_flink_refuses(text: str, handed: str) -> None:
    with pytest.raises(ValueError) as info:
        operator_memory(text)
    assert repr(handed) in str(info.value)


def test_invalid_memory_names_fabric8s_complaint() -> None:
    with pytest.raises(ValueError, match="Character I is neither a decimal digit"):
        operator_memory("invalid")


def test_long_hostile_quantities_are_bounded() -> None:
    with cpu_deadline("reading hostile quantities"):
        with pytest.raises(Fabric8Error, match="reads quantities of up to"):
            numerical_amount("9" * 100_000 + "Gi")
        # A huge exponent is rounded as DECIMAL64 rounds it, never computed.
        assert str(numerical_amount("1e2147483647")) == "1.000000000000000E+2147483647"
        assert numerical_amount("1e2147483647").to_double() == float("inf")
