"""Kubernetes resource quantities: binary (Ki..Ei) and decimal (n..E) suffixes, decimal exponents,
exact values, and memory rounded up to whole bytes."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from flinkmem.sources.quantity import QuantityError, format_mebibytes, parse_quantity, quantity_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Fraction(0)),
        ("100", Fraction(100)),
        ("512Mi", Fraction(536870912)),
        ("2Gi", Fraction(2147483648)),
        ("1Ki", Fraction(1024)),
        ("1Ti", Fraction(2**40)),
        ("1Pi", Fraction(2**50)),
        ("1Ei", Fraction(2**60)),
        ("1.5Gi", Fraction(1610612736)),
        (".5Gi", Fraction(536870912)),
        ("1.", Fraction(1)),
        ("2G", Fraction(2 * 10**9)),  # decimal G in Kubernetes
        ("1k", Fraction(1000)),
        ("1M", Fraction(10**6)),
        ("1T", Fraction(10**12)),
        ("1P", Fraction(10**15)),
        ("1E", Fraction(10**18)),  # exa, not an exponent
        ("1e6", Fraction(10**6)),
        ("1E3", Fraction(1000)),
        ("1e-3", Fraction(1, 1000)),
        ("1.5e3", Fraction(1500)),
        ("100m", Fraction(1, 10)),  # milli
        ("1600m", Fraction(8, 5)),
        ("5n", Fraction(5, 10**9)),
        ("3u", Fraction(3, 10**6)),
        ("+1Ki", Fraction(1024)),
        ("-1Ki", Fraction(-1024)),
        ("0.1", Fraction(1, 10)),
    ],
)
def test_parse_quantity(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "Gi", "1KB", "1ki", "1gi", "1 Gi", "1.2.3", "1e", "1e3Mi", "0x10", "--1", "1Mi5"]
)
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1Gi", 2**30), ("1G", 10**9), ("100m", 1), ("1600m", 2), ("1.5", 2), ("1", 1), ("0", 0), ("1.1Ki", 1127)],
)
def test_quantity_bytes_rounds_up(text: str, expected: int) -> None:
    assert quantity_bytes(text) == expected


def test_quantity_bytes_rejects() -> None:
    with pytest.raises(QuantityError):
        quantity_bytes("lots")


def test_format_mebibytes() -> None:
    assert format_mebibytes(2506) == "2506Mi"
    assert format_mebibytes(0) == "0Mi"


def test_quantities_up_to_4096_characters_are_exact() -> None:
    assert parse_quantity("1" * 4096) == Fraction(int("1" * 4096))
    assert parse_quantity("0" * 4000 + "1Gi") == Fraction(2**30)
    assert parse_quantity("1." + "0" * 4000 + "1") == 1 + Fraction(1, 10**4001)
    assert parse_quantity("1e-030") == Fraction(1, 10**30)
    assert parse_quantity("1e+0030") == Fraction(10**30)


@pytest.mark.parametrize(
    "text",
    [
        "1" * 4097,
        "1" * 100_000 + "x",
        "1" * 100_000 + "Mi",
        "1." + "1" * 100_000,
        "1e-" + "1" * 100_000,
        " " + "0" * 5000,
    ],
)
def test_longer_quantities_are_refused_quickly(text: str) -> None:
    started = time.process_time()
    with pytest.raises(QuantityError):
        parse_quantity(text)
    assert time.process_time() - started < 0.1


@pytest.mark.parametrize("text", ["1e31", "1e-31", "1e" + "0" * 50 + "31", "1e100", "1e" + "9" * 1000])
def test_exponents_beyond_30_are_refused(text: str) -> None:
    with pytest.raises(QuantityError, match="exponent"):
        parse_quantity(text)


@pytest.mark.parametrize("text", [".", "+.", "-", "1..5", ".e3", "1.5.Mi", "١Gi"])
def test_malformed_numbers_are_refused(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)
