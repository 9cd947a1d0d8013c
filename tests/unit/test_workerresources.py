"""CPU cores, slots and extended resources of a TaskManager spec (notes section 7)."""

from __future__ import annotations

import pytest

from flinkmem.engine.errors import InvalidOptionValue, MemoryConflict, Rule
from flinkmem.engine.options import java_text
from flinkmem.engine.workerresources import (
    MAX_LIST_CHARS,
    check_truncated_cpu,
    parse_string_list,
    read_cpu,
    read_external_resources,
    resource_amount,
    truncate_cpu,
)
from tests.support.budget import cpu_deadline

CPU, SLOTS, K8S = "taskmanager.cpu.cores", "taskmanager.numberOfTaskSlots", "kubernetes.taskmanager.cpu.amount"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.0, 1.0), (0.123456789, 0.12345678), (1e-9, 0.0), (1e-8, 1e-8), (2.999999999, 2.99999999), (1e300, 1e300)],
)
def test_truncation_to_eight_decimals(value: float, expected: float) -> None:
    assert truncate_cpu(value) == expected


def test_cpu_source_order() -> None:
    assert read_cpu({CPU: "2.5", SLOTS: "4"}, 3.0) == 2.5
    assert read_cpu({SLOTS: "4"}, 3.0) == 3.0
    assert read_cpu({SLOTS: "4"}, -1.0) == 4.0
    assert read_cpu({}) == 1.0


@pytest.mark.parametrize("config", [{CPU: "0"}, {CPU: "-0.0"}, {CPU: "-2"}, {SLOTS: "0"}, {SLOTS: "-1"}])
def test_cpu_must_be_positive(config: dict[str, str]) -> None:
    with pytest.raises(MemoryConflict) as caught:
        read_cpu(config)
    assert caught.value.rule is Rule.CPU_CORES_NOT_POSITIVE


@pytest.mark.parametrize("text", ["NaN", "Infinity", " Infinity "])
def test_cpu_nan_and_infinity_pass_the_sign_check_and_then_fail(text: str) -> None:
    with pytest.raises(InvalidOptionValue):
        read_cpu({CPU: text})


def test_truncated_cpu_of_zero_is_refused_when_read_back() -> None:
    check_truncated_cpu(1.0, {CPU: "1"}, -1.0)
    with pytest.raises(MemoryConflict) as caught:
        check_truncated_cpu(0.0, {CPU: "1e-9"}, -1.0)
    assert "1e-9" in caught.value.message


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("gpu", ["gpu"]),
        ("gpu;fpga", ["gpu", "fpga"]),
        ("[gpu, fpga]", ["gpu", "fpga"]),
        (" gpu ; fpga ", ["gpu", "fpga"]),
        ("gpu;;fpga", ["gpu", "", "fpga"]),
        ("'gpu;x';fpga", ["gpu;x", "fpga"]),
        ('"gpu"', ["gpu"]),
        ("[ ]", []),
        ("", []),
        (";", []),
        ("gpu,fpga", ["gpu,fpga"]),
        ("- gpu", ["gpu"]),
        ("[gpu", ["[gpu"]),
        # YAML sequences: quoted items, nested sequences (Java's List.toString), core-schema numbers.
        ("[\"gpu\", 'fpga']", ["gpu", "fpga"]),
        ("[gpu, [fpga]]", ["gpu", "[fpga]"]),
        ("- - gpu", ["[gpu]"]),
        ("--- [gpu]", ["gpu"]),
        ("[01, +1, 0x10, 0o17, 1e3, .5, -1]", ["1", "1", "16", "15", "1000.0", "0.5", "-1"]),
        ("[a:b, .inf]", ["a:b", ".inf"]),
        ("[null]", ["[null]"]),  # Flink's YAML reading fails; the legacy syntax takes the whole text
    ],
)
def test_list_syntax_as_flink_reads_it(text: str, items: list[str]) -> None:
    # Each case was printed by Flink 1.20.3 and 2.3.0's Configuration for `external-resources`.
    assert parse_string_list(text) == items


def test_external_resources() -> None:
    config = {"external-resources": "gpu;fpga;tpu", "external-resource.gpu.amount": "2"}
    config |= {"external-resource.fpga.amount": "0", "external-resource.tpu.amount": "-1"}
    assert read_external_resources(config) == (("gpu", 2),)
    assert read_external_resources({"external-resources": "none", "external-resource.none.amount": "1"}) == ()
    assert read_external_resources({"external-resources": " none", "external-resource.none.amount": "1"}) == (
        ("none", 1),
    )


def test_external_resource_amount_must_be_a_long() -> None:
    with pytest.raises(InvalidOptionValue) as caught:
        read_external_resources({"external-resources": "gpu", "external-resource.gpu.amount": " 1"})
    assert "external-resource.gpu.amount" in caught.value.message


def test_unclosed_quote_is_refused() -> None:
    with pytest.raises(InvalidOptionValue):
        read_external_resources({"external-resources": "'gpu"})


@pytest.mark.parametrize(
    ("amount", "flink"),
    [
        (1, 1),
        (2**53, 2**53),
        (2**53 + 1, 2**53),  # the nearest double
        # Printed by Flink 1.20.3 and 2.3.0 for external-resource.gpu.amount: 9223372036854775807.
        ((1 << 63) - 1, -9223372036854775616),
    ],
)
def test_resource_amount_goes_through_a_double(amount: int, flink: int) -> None:
    assert resource_amount(amount) == flink


# ---------------------------------------------------------------------------------------------
# Hostile lists: nesting of any depth without recursion, a length cap, no leaking exceptions


@pytest.mark.parametrize(
    ("text", "items"),
    [
        # Printed by Flink 2.3.0 and 1.20.3 for `external-resources`: a null item of the list itself
        # fails Flink's conversion, so the legacy syntax takes the text; inside a nested list it is null.
        ("-", ["-"]),
        ("-\n- gpu", ["-\n- gpu"]),
        ("- -", ["[null]"]),
        ("- - ", ["[null]"]),
        ("- - - ", ["[[null]]"]),
        ("- - ~", ["[null]"]),
        ("[[null]]", ["[null]"]),
        ("[[~]]", ["[null]"]),
        ("[gpu, [null]]", ["gpu", "[null]"]),
        ("[[null, 1]]", ["[null, 1]"]),
        ("[[[null]]]", ["[[null]]"]),
        ("[[]]", ["[]"]),
        ("- []", ["[]"]),
    ],
)
def test_null_items_as_flink_reads_them(text: str, items: list[str]) -> None:
    assert parse_string_list(text) == items


def test_nesting_up_to_the_length_cap_needs_no_recursion() -> None:
    depth = MAX_LIST_CHARS // 2 - 1
    assert parse_string_list("[" * depth + "a" + "]" * depth) == ["[" * (depth - 1) + "a" + "]" * (depth - 1)]
    assert parse_string_list("- " * (MAX_LIST_CHARS // 2 - 1) + "a") == [
        "[" * (MAX_LIST_CHARS // 2 - 2) + "a" + "]" * (MAX_LIST_CHARS // 2 - 2)
    ]
    # Unclosed: no YAML list, so the legacy syntax takes the whole text as one name.
    assert parse_string_list("[" * 4000) == ["[" * 4000]


def test_yaml_integers_of_any_length_in_a_list() -> None:
    # str(int(text)) in Python refuses more than 4300 digits; Flink prints the BigInteger.
    assert parse_string_list("[+000" + "9" * 4000 + ", -0, -007]") == ["9" * 4000, "0", "-7"]
    assert parse_string_list("[0x" + "f" * 4000 + "]") == [java_text(16**4000 - 1)]


@pytest.mark.parametrize("text", ["[" * 20_000, "gpu;" * 2000, "[" + "a, " * 2000 + "]", "'" + "x" * 5000])
def test_lists_longer_than_the_cap_are_refused_naming_the_option(text: str) -> None:
    with cpu_deadline("a list over the cap"), pytest.raises(InvalidOptionValue) as caught:
        read_external_resources({"external-resources": text})
    assert caught.value.rule is Rule.INVALID_VALUE
    assert caught.value.option_keys == ("external-resources",)
    assert f"more than the {MAX_LIST_CHARS:,} flinkmem reads" in caught.value.message
    assert len(caught.value.message) < 1000
