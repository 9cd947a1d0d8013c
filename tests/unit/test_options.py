"""How Flink reads raw option values of each type (memory-model notes, sections 2.5, 2.6 and 4).

Raw values are strings (from `-D`, FlinkDeployments, legacy files) or YAML-typed scalars (int,
float, bool) that Flink turns into text with Java's `toString()` before parsing.
"""

from __future__ import annotations

import math
import struct
import sys

import pytest

from flinkmem.engine.errors import InvalidOptionValue, OptionValue, Rule
from flinkmem.engine.options import (
    BooleanOption,
    Config,
    DoubleOption,
    FloatOption,
    IntOption,
    LongOption,
    MemoryOption,
    RawValue,
    java_text,
    option_value,
    repr_fraction,
)
from tests.support.budget import cpu_deadline

MIB = 1 << 20
KEY = "test.memory.size"


def f32(text: str) -> float:
    """A short decimal rounded to float32 (exact here: such decimals cannot double-round)."""
    value: float = struct.unpack(">f", struct.pack(">f", float(text)))[0]
    return value


# ---------------------------------------------------------------------------------------------
# java_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1600m", "1600m"),
        ("  x ", "  x "),
        (True, "true"),
        (False, "false"),
        (1600, "1600"),
        (-5, "-5"),
        (99999999999999999999, "99999999999999999999"),  # a YAML BigInteger
        (1677721600.0, "1.6777216E9"),
        (0.1, "0.1"),
        (0.5, "0.5"),
        (1e-50, "1.0E-50"),
        (math.inf, "Infinity"),
        (math.nan, "NaN"),
    ],
)
def test_java_text(raw: RawValue, expected: str) -> None:
    assert java_text(raw) == expected


# ---------------------------------------------------------------------------------------------
# MemoryOption


def test_memory_option_default_and_absent() -> None:
    assert MemoryOption(KEY, 128 * MIB).read({}) == 128 * MIB
    with pytest.raises(KeyError):
        MemoryOption(KEY).read({})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1600m", 1600 * MIB),
        ("  1600 MB  ", 1600 * MIB),
        (1677721600, 1677721600),  # a YAML int is bytes
        (0, 0),
        (0x100000000, 4 * 1024 * MIB),
    ],
)
def test_memory_option_reads(raw: RawValue, expected: int) -> None:
    assert MemoryOption(KEY).read({KEY: raw}) == expected


def test_memory_option_configured_value_beats_default() -> None:
    assert MemoryOption(KEY, 128 * MIB).read({KEY: "0"}) == 0


@pytest.mark.parametrize("raw", ["1.5g", "", "   ", "abc", "-1g", 1677721600.0, True, "[1600m]", "99999999999t"])
def test_memory_option_invalid(raw: RawValue) -> None:
    with pytest.raises(InvalidOptionValue) as info:
        MemoryOption(KEY, 128 * MIB).read({KEY: raw})
    error = info.value
    assert error.rule is Rule.INVALID_VALUE
    assert error.option_keys == (KEY,)
    assert error.options[0].configured == java_text(raw)
    assert KEY in error.message
    assert error.fix


# ---------------------------------------------------------------------------------------------
# FloatOption (Java Float, widened to double)

FRACTION = FloatOption("test.fraction", f32("0.1"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.1", f32("0.1")),
        ("0.3f", f32("0.3")),
        (" 0.2 ", f32("0.2")),
        ("1e-1", f32("0.1")),
        ("0x1p-3", 0.125),
        ("-0.0", -0.0),
        ("1e-50", 0.0),  # a string underflows to 0 silently (C77)
        ("3.5e38", math.inf),  # ... and overflows to infinity silently
        (0.1, f32("0.1")),  # a YAML float is cast double -> float
        (0.25, 0.25),
        (0.0, 0.0),
        (1, 1.0),  # a YAML int goes through its text
        (0, 0.0),
        (2.0**-149, 2.0**-149),  # Float.MIN_VALUE is inside the accepted range
        (3.4028234663852886e38, 3.4028234663852886e38),  # Float.MAX_VALUE too
        (-0.5, -0.5),
    ],
)
def test_float_option_reads(raw: RawValue, expected: float) -> None:
    value = FRACTION.read({FRACTION.key: raw})
    assert value == expected
    assert math.copysign(1.0, value) == math.copysign(1.0, expected)


def test_float_option_default_and_nan() -> None:
    assert FRACTION.read({}) == f32("0.1")
    assert math.isnan(FRACTION.read({FRACTION.key: "NaN"}))


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "",
        "nan",
        "inf",
        "1_0",
        "0.1.2",
        True,  # Boolean -> "true" -> not a number
        # YAML floats outside float range fail (C65, C76): not 0 and not within [MIN_VALUE, MAX_VALUE]
        math.inf,
        -math.inf,
        math.nan,
        1e-50,
        1.4e-45,  # below Float.MIN_VALUE = 2^-149 ~ 1.4013e-45 when compared as doubles
        3.5e38,
        -3.5e38,
    ],
)
def test_float_option_invalid(raw: RawValue) -> None:
    with pytest.raises(InvalidOptionValue) as info:
        FRACTION.read({FRACTION.key: raw})
    assert info.value.rule is Rule.INVALID_VALUE
    assert info.value.option_keys == (FRACTION.key,)


# ---------------------------------------------------------------------------------------------
# DoubleOption

FACTOR = DoubleOption("test.factor", 1.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.5", 1.5),
        ("1.1", 1.1),  # double precision, not float32
        (" 2 ", 2.0),
        ("1.5d", 1.5),
        ("0x1p1", 2.0),
        ("1e400", math.inf),
        ("Infinity", math.inf),
        (1.33, 1.33),
        (3, 3.0),
    ],
)
def test_double_option_reads(raw: RawValue, expected: float) -> None:
    assert FACTOR.read({FACTOR.key: raw}) == expected


def test_double_option_default() -> None:
    assert FACTOR.read({}) == 1.0
    assert math.isnan(FACTOR.read({FACTOR.key: "NaN"}))


@pytest.mark.parametrize("raw", ["abc", "inf", "nan", "1_5", "", True])
def test_double_option_invalid(raw: RawValue) -> None:
    with pytest.raises(InvalidOptionValue) as info:
        FACTOR.read({FACTOR.key: raw})
    assert info.value.option_keys == (FACTOR.key,)


# ---------------------------------------------------------------------------------------------
# BooleanOption: only case-insensitive true/false, no trimming

FLAG = BooleanOption("test.flag", False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("tRuE", True),
        ("false", False),
        ("FALSE", False),
        (True, True),
        (False, False),
    ],
)
def test_boolean_option_reads(raw: RawValue, expected: bool) -> None:
    assert FLAG.read({FLAG.key: raw}) is expected


def test_boolean_option_default() -> None:
    assert FLAG.read({}) is False
    assert BooleanOption("other", True).read({}) is True


@pytest.mark.parametrize("raw", ["yes", "no", "on", "off", "1", "0", " true", "true ", "", "t", 1, 0, 5, 1.0])
def test_boolean_option_invalid(raw: RawValue) -> None:
    with pytest.raises(InvalidOptionValue) as info:
        FLAG.read({FLAG.key: raw})
    assert info.value.rule is Rule.INVALID_VALUE
    assert info.value.option_keys == (FLAG.key,)


# ---------------------------------------------------------------------------------------------
# IntOption (jobmanager.heap.mb in 1.x)

HEAP_MB = IntOption("test.heap.mb")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1024", 1024), ("+5", 5), ("-1", -1), (1024, 1024), (-(2**31), -(2**31)), (2**31 - 1, 2**31 - 1)],
)
def test_int_option_reads(raw: RawValue, expected: int) -> None:
    assert HEAP_MB.read({HEAP_MB.key: raw}) == expected


@pytest.mark.parametrize("raw", ["1024m", " 1024", "1024 ", "1.0", "", 2**31, -(2**31) - 1, True, 1024.0])
def test_int_option_invalid(raw: RawValue) -> None:
    with pytest.raises(InvalidOptionValue) as info:
        HEAP_MB.read({HEAP_MB.key: raw})
    assert info.value.rule is Rule.INVALID_VALUE
    assert info.value.option_keys == (HEAP_MB.key,)


# ---------------------------------------------------------------------------------------------
# option_value / repr_fraction


def test_option_value_configured_and_default() -> None:
    option = MemoryOption(KEY, 128 * MIB)
    config: Config = {KEY: "1g"}
    assert option_value(config, option, 1 << 30) == OptionValue(KEY, "1g", "1 GiB")
    assert option_value({}, option, 128 * MIB) == OptionValue(KEY, None, "128 MiB")
    assert option_value({KEY: 1677721600}, option, 1677721600).configured == "1677721600"


def test_option_value_of_a_fraction() -> None:
    shown = option_value({}, FRACTION, f32("0.1"))
    assert shown == OptionValue(FRACTION.key, None, "0.10000000149011612")


def test_repr_fraction() -> None:
    assert repr_fraction(f32("0.1")) == "0.10000000149011612"
    assert repr_fraction(-f32("0.1")) == "-0.10000000149011612"
    assert repr_fraction(1.0) == "1.0"
    assert repr_fraction(math.nan) == "NaN"


# ---------------------------------------------------------------------------------------------
# Deprecated (fallback) keys, Integer defaults and Long options (TaskManager options)

NEW_KEY, OLD_KEY = "test.memory.network.min", "test.network.memory.min"
WITH_FALLBACK = MemoryOption(NEW_KEY, 64 << 20, (OLD_KEY,))


def test_fallback_key_is_read_when_the_main_key_is_absent() -> None:
    assert WITH_FALLBACK.read({OLD_KEY: "1m"}) == 1 << 20
    assert WITH_FALLBACK.read({NEW_KEY: "2m", OLD_KEY: "not read"}) == 2 << 20
    assert WITH_FALLBACK.present({OLD_KEY: ""}) and not WITH_FALLBACK.present({})
    assert WITH_FALLBACK.keys == (NEW_KEY, OLD_KEY)


def test_fallback_key_errors_and_values_name_the_key_that_was_set() -> None:
    with pytest.raises(InvalidOptionValue) as caught:
        WITH_FALLBACK.read({OLD_KEY: "lots"})
    assert caught.value.options[0].key == OLD_KEY
    assert option_value({OLD_KEY: "1m"}, WITH_FALLBACK, 1 << 20) == OptionValue(OLD_KEY, "1m", "1 MiB")


def test_float_option_fallback_key() -> None:
    option = FloatOption("test.fraction.new", 0.5, ("test.fraction.old",))
    assert option.read({"test.fraction.old": "0.25"}) == 0.25
    assert option.present({"test.fraction.old": "x"})


def test_int_option_default_and_fix() -> None:
    slots = IntOption("test.slots", 1, fix="write a whole number of slots such as 2")
    assert slots.read({}) == 1
    with pytest.raises(InvalidOptionValue) as caught:
        slots.read({"test.slots": " 2"})
    assert caught.value.fix == "write a whole number of slots such as 2"


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("-5", -5), ("9223372036854775807", (1 << 63) - 1), (7, 7)])
def test_long_option_reads(raw: RawValue, expected: int) -> None:
    assert LongOption("test.amount").read({"test.amount": raw}) == expected


@pytest.mark.parametrize("raw", ["9223372036854775808", " 1", "1.0", "", "0x1"])
def test_long_option_invalid(raw: str) -> None:
    with pytest.raises(InvalidOptionValue):
        LongOption("test.amount").read({"test.amount": raw})


def test_long_option_absent_is_none() -> None:
    assert LongOption("test.amount").read({}) is None


def test_double_option_fallback_key() -> None:
    option = DoubleOption("test.cpu.amount", -1.0, ("test.cpu",))
    assert option.read({"test.cpu": "2.5"}) == 2.5
    assert option.lookup({"test.cpu": "2.5"}) == ("test.cpu", "2.5")


# ---------------------------------------------------------------------------------------------
# Values of 20,000 digits: read where Java reads them, refused (naming the option) where it refuses,
# and never hanging (the 3 MiB inputs of test_hostile_parsers hold every parser to linear time).

LONG_DIGITS = "1" * 20_000


def _within_budget(read: object) -> object:
    assert callable(read)
    with cpu_deadline("a 20,000-digit value"):
        return read()


@pytest.mark.parametrize(
    "option",
    [
        MemoryOption(KEY),
        IntOption("test.int"),
        LongOption("test.long"),
        DoubleOption("test.double", 1.0),
        FloatOption("test.float", 0.1),
    ],
    ids=lambda option: type(option).__name__,
)
@pytest.mark.parametrize(
    "text", [LONG_DIGITS + "x", "+-" + LONG_DIGITS, LONG_DIGITS + ".5.5", "1e" + LONG_DIGITS + "!"]
)
def test_long_malformed_numbers_are_refused_quickly(
    option: MemoryOption | IntOption | LongOption | DoubleOption | FloatOption, text: str
) -> None:
    with pytest.raises(InvalidOptionValue) as info:
        _within_budget(lambda: option.read({option.key: text}))
    assert info.value.rule is Rule.INVALID_VALUE
    assert info.value.option_keys == (option.key,)


def test_long_numbers_java_refuses_are_refused() -> None:
    # MemorySize.parse, Integer.parseInt and Long.parseLong overflow on 20,000 significant digits.
    for option in (MemoryOption(KEY), IntOption("test.int"), LongOption("test.long")):
        with pytest.raises(InvalidOptionValue) as info:
            _within_budget(lambda option=option: option.read({option.key: LONG_DIGITS}))
        assert info.value.option_keys == (option.key,)


def test_long_numbers_java_reads_are_read() -> None:
    # Java reads any number of leading zeros, and rounds any number of digits (Java 17 gives these).
    zeros = "0" * 20_000
    assert _within_budget(lambda: MemoryOption(KEY).read({KEY: zeros + "16m"})) == 16 * MIB
    assert _within_budget(lambda: IntOption("k").read({"k": "-" + zeros + "7"})) == -7
    assert _within_budget(lambda: LongOption("k").read({"k": zeros + "9223372036854775807"})) == 2**63 - 1
    assert _within_budget(lambda: DoubleOption("k", 1.0).read({"k": "1." + zeros + "1"})) == 1.0
    assert _within_budget(lambda: DoubleOption("k", 1.0).read({"k": LONG_DIGITS})) == math.inf
    assert _within_budget(lambda: FloatOption("k", 0.1).read({"k": "0." + zeros + "1"})) == 0.0


def test_java_text_of_integers_beyond_pythons_digit_limit() -> None:
    # A YAML loader turns `0x` and 5,000 hex digits into such an int; Flink would print its decimals.
    value = 16**5000 - 1
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        expected = str(value)
    finally:
        sys.set_int_max_str_digits(limit)
    assert java_text(value) == expected
    assert len(expected) == 6021
    assert java_text(-value) == "-" + java_text(value)
    with pytest.raises(InvalidOptionValue):
        IntOption("k").read({"k": value})
    with pytest.raises(InvalidOptionValue):
        MemoryOption(KEY).read({KEY: value})
