"""The generic process-memory derivation, driven by a made-up role so that only the shared skeleton
is under test (memory-model notes, sections 5.1-5.6): mode selection by key presence, the metaspace
and overhead arithmetic, and the exact order of reads and checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest

from flinkmem.engine.errors import FlinkMemError, InvalidOptionValue, MemoryConflict, MemoryOverflow, Rule
from flinkmem.engine.options import Config, FloatOption, MemoryOption
from flinkmem.engine.process import (
    Notice,
    OverheadOptions,
    ProcessMemoryOptions,
    ProcessMemorySpec,
    RangeFraction,
    RangeOptions,
    clamp,
    derive_metaspace_and_overhead,
    derive_process_memory,
    fraction_of,
    inverse_fraction_of,
    read_fraction,
    read_range,
)

MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40
MAX_BYTES = (1 << 63) - 1
FLOAT_0_1 = 0.10000000149011612

TASK = MemoryOption("test.memory.task.size")
MANAGED = MemoryOption("test.memory.managed.size")
FLINK = MemoryOption("test.memory.flink.size")
PROCESS = MemoryOption("test.memory.process.size")
METASPACE = MemoryOption("test.memory.jvm-metaspace.size", 256 * MIB)
OVH_MIN = MemoryOption("test.memory.jvm-overhead.min", 192 * MIB)
OVH_MAX = MemoryOption("test.memory.jvm-overhead.max", GIB)
FRACTION = FloatOption("test.memory.jvm-overhead.fraction", FLOAT_0_1)

OPTIONS = ProcessMemoryOptions(
    role="TestRole",
    required_fine_grained=(TASK, MANAGED),
    total_flink=FLINK,
    total_process=PROCESS,
    metaspace=METASPACE,
    overhead=OverheadOptions(OVH_MIN, OVH_MAX, FRACTION),
)


@dataclass(frozen=True)
class SimpleFlink:
    task: int
    managed: int

    @property
    def total_flink(self) -> int:
        return self.task + self.managed


class SimpleModel:
    """A role whose Flink memory is task + managed; records which derivation path was taken."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []

    def from_required_fine_grained(self, config: Config, notices: list[Notice]) -> SimpleFlink:
        self.calls.append(("fine-grained", None))
        return SimpleFlink(TASK.read(config), MANAGED.read(config))

    def from_total_flink(
        self, config: Config, total_flink: int, source: MemoryOption, notices: list[Notice]
    ) -> SimpleFlink:
        self.calls.append((f"total-flink from {source.key}", total_flink))
        return SimpleFlink(total_flink, 0)


def derive(config: Config) -> tuple[ProcessMemorySpec[SimpleFlink], SimpleModel, list[Notice]]:
    model = SimpleModel()
    notices: list[Notice] = []
    spec = derive_process_memory(config, OPTIONS, model, notices)
    return spec, model, notices


def failure(config: Config) -> FlinkMemError:
    with pytest.raises(FlinkMemError) as info:
        derive(config)
    return info.value


def codes(notices: list[Notice]) -> list[str]:
    return [n.code for n in notices]


# ---------------------------------------------------------------------------------------------
# mode selection


def test_fine_grained_mode_needs_all_required_options() -> None:
    spec, model, _ = derive({TASK.key: "768m", MANAGED.key: "256m"})
    assert model.calls == [("fine-grained", None)]
    # total Flink 1g: (1g + 256m) * 0.1f/(1-0.1f) = 149130811 < 192m -> overhead raised to 192m
    assert (spec.total_flink, spec.metaspace, spec.overhead) == (GIB, 256 * MIB, 192 * MIB)
    assert spec.total_process == GIB + 256 * MIB + 192 * MIB == 1543503872
    assert spec.flink == SimpleFlink(768 * MIB, 256 * MIB)


def test_fine_grained_mode_wins_over_flink_and_process() -> None:
    spec, model, _ = derive({TASK.key: "768m", MANAGED.key: "256m", FLINK.key: "5g", PROCESS.key: "1600m"})
    assert model.calls == [("fine-grained", None)]
    # Overhead is the remainder 1600m - 1g - 256m = 320m; the configured total Flink is not the model's input.
    assert spec.overhead == 320 * MIB
    assert spec.total_process == 1600 * MIB


def test_one_required_option_alone_falls_through_to_total_flink() -> None:
    # Only one of the two required options: not the fine-grained mode, and its (bad) value is never read.
    spec, model, _ = derive({TASK.key: "garbage", FLINK.key: "2g"})
    assert model.calls == [(f"total-flink from {FLINK.key}", 2 * GIB)]
    assert spec.overhead == 268435460  # C08 arithmetic: (2g + 256m) * inverse 0.1f, truncated


def test_total_flink_mode_beats_total_process() -> None:
    spec, model, _ = derive({FLINK.key: "1g", PROCESS.key: "1600m"})
    assert model.calls == [(f"total-flink from {FLINK.key}", GIB)]
    assert spec.overhead == 320 * MIB  # C13


def test_total_process_mode_hands_the_remainder_to_the_model() -> None:
    spec, model, _ = derive({PROCESS.key: "1600m"})
    assert model.calls == [(f"total-flink from {PROCESS.key}", 1152 * MIB)]
    assert (spec.metaspace, spec.overhead, spec.total_process) == (256 * MIB, 192 * MIB, 1600 * MIB)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {TASK.key: "1g"},
        {MANAGED.key: "1g"},
        {METASPACE.key: "256m", OVH_MIN.key: "1m", OVH_MAX.key: "2m", FRACTION.key: "0.1"},
        {"Test.Memory.Process.Size": "2g"},  # keys are case-sensitive
    ],
)
def test_no_sizing_option(config: Config) -> None:
    error = failure(config)
    assert isinstance(error, MemoryConflict)
    assert error.rule is Rule.NO_SIZING_OPTION
    assert error.option_keys == (TASK.key, MANAGED.key, FLINK.key, PROCESS.key)
    assert "TestRole" in error.message


@pytest.mark.parametrize("value", ["", "   ", "abc"])
def test_presence_selects_the_mode_even_for_unreadable_values(value: str) -> None:
    error = failure({PROCESS.key: value})
    assert isinstance(error, InvalidOptionValue)
    assert error.option_keys == (PROCESS.key,)


# ---------------------------------------------------------------------------------------------
# overhead arithmetic


def test_overhead_from_fraction_raised_to_min_with_a_notice() -> None:
    spec, _, notices = derive({FLINK.key: "1g"})
    assert spec.overhead == 192 * MIB
    assert codes(notices) == ["overhead-raised"]
    assert all(n.level == "info" for n in notices)


def test_overhead_from_fraction_capped_at_max_with_a_notice() -> None:
    spec, _, notices = derive({FLINK.key: "1g", FRACTION.key: "0.5"})
    assert spec.overhead == GIB  # C28: (1g + 256m) * 1.0 = 1280m > 1g
    assert codes(notices) == ["overhead-capped"]


def test_overhead_from_fraction_within_range_has_no_notice() -> None:
    spec, _, notices = derive({PROCESS.key: "3000m"})
    assert spec.overhead == 314572804  # C05
    assert notices == []


def test_negative_zero_fraction_is_in_range() -> None:
    spec, _, _ = derive({PROCESS.key: "3000m", FRACTION.key: "-0.0"})
    assert spec.overhead == 192 * MIB  # C30


def test_remainder_overhead_ignores_an_unconfigured_fraction() -> None:
    _, _, notices = derive({FLINK.key: "1g", PROCESS.key: "1600m"})
    assert notices == []


def test_remainder_overhead_notes_a_configured_fraction_it_does_not_match() -> None:
    spec, _, notices = derive({FLINK.key: "1g", PROCESS.key: "1600m", FRACTION.key: "0.2"})
    assert spec.overhead == 320 * MIB  # the fraction would give 335544325
    assert codes(notices) == ["overhead-fraction-ignored"]
    assert notices[0].level == "info"


def test_remainder_overhead_matching_a_configured_fraction_has_no_notice() -> None:
    # 2048m * 0.25 = 512m; Flink memory 2048m - 256m - 512m = 1280m.
    spec, _, notices = derive({FLINK.key: "1280m", PROCESS.key: "2048m", FRACTION.key: "0.25"})
    assert spec.overhead == 512 * MIB
    assert notices == []


@pytest.mark.parametrize(
    ("process", "ok"),
    [
        ("1472m", True),  # 1g + 256m + 192m: overhead exactly the min
        ("1471m", False),
        ("2304m", True),  # 1g + 256m + 1g: overhead exactly the max
        ("2305m", False),
    ],
)
def test_derived_overhead_range_is_inclusive(process: str, ok: bool) -> None:
    config = {FLINK.key: "1g", PROCESS.key: process}
    if ok:
        spec, _, _ = derive(config)
        assert spec.total_process == int(process[:-1]) * MIB
    else:
        error = failure(config)
        assert isinstance(error, MemoryConflict)
        assert error.rule is Rule.DERIVED_OVERHEAD_OUT_OF_RANGE


def test_process_equal_to_flink_plus_metaspace_is_not_below_it() -> None:
    # E9 is strict (<): equality leaves 0 overhead, which then fails the range check ...
    error = failure({FLINK.key: "1g", PROCESS.key: "1280m"})
    assert error.rule is Rule.DERIVED_OVERHEAD_OUT_OF_RANGE
    # ... or passes it when the min allows 0.
    spec, _, _ = derive({FLINK.key: "1g", PROCESS.key: "1280m", OVH_MIN.key: "0"})
    assert spec.overhead == 0


def test_process_below_flink_plus_metaspace() -> None:
    error = failure({FLINK.key: "1g", PROCESS.key: "1279m"})
    assert isinstance(error, MemoryConflict)
    assert error.rule is Rule.PROCESS_BELOW_FLINK_PLUS_METASPACE
    assert PROCESS.key in error.option_keys


def test_metaspace_and_overhead_exceed_process_is_strict() -> None:
    # 448m = 256m + 192m: not exceeded, the model gets 0 bytes of Flink memory.
    spec, model, _ = derive({PROCESS.key: "448m"})
    assert model.calls == [(f"total-flink from {PROCESS.key}", 0)]
    assert spec.total_process == 448 * MIB
    error = failure({PROCESS.key: "447m"})
    assert isinstance(error, MemoryConflict)
    assert error.rule is Rule.METASPACE_AND_OVERHEAD_EXCEED_PROCESS


def test_overhead_is_capped_before_the_process_check() -> None:
    # raw overhead 10% of 300m = 30m would fit; the min of 192m does not (256m + 192m > 300m).
    error = failure({PROCESS.key: "300m"})
    assert error.rule is Rule.METASPACE_AND_OVERHEAD_EXCEED_PROCESS
    spec, _, _ = derive({PROCESS.key: "300m", OVH_MIN.key: "0"})
    assert spec.overhead == 31457280


# ---------------------------------------------------------------------------------------------
# order of reads and checks


def _failing_key(config: Config) -> tuple[str, ...]:
    error = failure(config)
    assert isinstance(error, InvalidOptionValue)
    return error.option_keys


def test_process_mode_read_order() -> None:
    bad = "abc"
    assert _failing_key({PROCESS.key: bad, METASPACE.key: bad, OVH_MIN.key: bad}) == (PROCESS.key,)
    assert _failing_key({PROCESS.key: "1g", METASPACE.key: bad, OVH_MIN.key: bad}) == (METASPACE.key,)
    assert _failing_key({PROCESS.key: "1g", OVH_MIN.key: bad, OVH_MAX.key: bad}) == (OVH_MIN.key,)
    assert _failing_key({PROCESS.key: "1g", OVH_MAX.key: bad, FRACTION.key: bad}) == (OVH_MAX.key,)
    assert _failing_key({PROCESS.key: "1g", FRACTION.key: bad}) == (FRACTION.key,)


def test_flink_mode_reads_metaspace_before_process() -> None:
    assert _failing_key({FLINK.key: "1g", METASPACE.key: "abc", PROCESS.key: "abc"}) == (METASPACE.key,)
    assert _failing_key({FLINK.key: "abc", METASPACE.key: "abc"}) == (FLINK.key,)


def test_min_above_max_is_reported_before_the_fraction_range() -> None:
    error = failure({PROCESS.key: "1600m", OVH_MIN.key: "200m", OVH_MAX.key: "50m", FRACTION.key: "2"})
    assert error.rule is Rule.OVERHEAD_RANGE_INCONSISTENT
    assert "[0, 1)" not in error.problem
    error = failure({PROCESS.key: "1600m", FRACTION.key: "2"})
    assert error.rule is Rule.OVERHEAD_RANGE_INCONSISTENT
    assert "[0, 1)" in error.problem


@pytest.mark.parametrize("fraction", ["1", "1.0", "NaN", "Infinity", "-0.1", "-Infinity"])
def test_fraction_outside_zero_one(fraction: str) -> None:
    for config in ({PROCESS.key: "1600m"}, {FLINK.key: "1g"}, {FLINK.key: "1g", PROCESS.key: "1600m"}):
        error = failure({**config, FRACTION.key: fraction})
        assert isinstance(error, MemoryConflict)
        assert error.rule is Rule.OVERHEAD_RANGE_INCONSISTENT


def test_process_check_comes_before_the_overhead_range() -> None:
    # E9 is raised before the overhead options are even read.
    error = failure({FLINK.key: "1g", PROCESS.key: "1200m", OVH_MIN.key: "abc"})
    assert error.rule is Rule.PROCESS_BELOW_FLINK_PLUS_METASPACE
    assert _failing_key({FLINK.key: "1g", PROCESS.key: "1600m", OVH_MIN.key: "abc"}) == (OVH_MIN.key,)


def test_range_consistency_is_checked_before_the_remainder_range() -> None:
    # The remainder 320m would also be outside [300m, 200m]; the inconsistent range is reported.
    error = failure({FLINK.key: "1g", PROCESS.key: "1600m", OVH_MIN.key: "300m", OVH_MAX.key: "200m"})
    assert error.rule is Rule.OVERHEAD_RANGE_INCONSISTENT


def test_process_mode_never_calls_the_model_on_failure() -> None:
    model = SimpleModel()
    with pytest.raises(MemoryConflict):
        derive_process_memory({PROCESS.key: "100m"}, OPTIONS, model, [])
    assert model.calls == []


# ---------------------------------------------------------------------------------------------
# 64-bit overflow


def test_overflow_of_flink_plus_metaspace() -> None:
    error = failure({FLINK.key: "8388607t", METASPACE.key: "8388607t"})
    assert isinstance(error, MemoryOverflow)
    assert error.rule is Rule.SIZE_OVERFLOW
    assert "TestRole" in error.message


def test_overflow_of_the_inverse_fraction_product() -> None:
    error = failure({FLINK.key: "1000t", FRACTION.key: "0.9999999"})  # C58 for this role
    assert isinstance(error, MemoryOverflow)


def test_overflow_of_the_total_process_sum() -> None:
    # Flink + metaspace is exactly 2^63-1; adding the 1g overhead overflows.
    error = failure({FLINK.key: str(MAX_BYTES - 256 * MIB)})
    assert isinstance(error, MemoryOverflow)


def test_largest_sizes_that_fit() -> None:
    spec, _, _ = derive({PROCESS.key: "8388607t"})
    assert spec.total_process == 8388607 * TIB
    assert spec.overhead == GIB


# ---------------------------------------------------------------------------------------------
# Building blocks shared with the TaskManager model (notes section 4)

NET_MIN = MemoryOption("test.memory.network.min", 64 * MIB, ("test.network.memory.min",))
NET_MAX = MemoryOption("test.memory.network.max", MAX_BYTES)
NET_FRACTION = FloatOption("test.memory.network.fraction", FLOAT_0_1)
NETWORK = RangeOptions(NET_MIN, NET_MAX, NET_FRACTION, Rule.NETWORK_RANGE_INCONSISTENT)


def test_read_range_reads_min_before_max_before_fraction() -> None:
    with pytest.raises(InvalidOptionValue, match=r"test\.memory\.network\.min"):
        read_range({NET_MIN.key: "x", NET_MAX.key: "y", NET_FRACTION.key: "z"}, NETWORK)
    with pytest.raises(InvalidOptionValue, match=r"test\.memory\.network\.max"):
        read_range({NET_MAX.key: "y", NET_FRACTION.key: "z"}, NETWORK)
    assert read_range({}, NETWORK) == RangeFraction(64 * MIB, MAX_BYTES, FLOAT_0_1)


def test_read_range_uses_the_deprecated_key_and_the_ranges_rule() -> None:
    assert read_range({"test.network.memory.min": "1m"}, NETWORK).min == MIB
    with pytest.raises(MemoryConflict) as caught:
        read_range({"test.network.memory.min": "2g", NET_MAX.key: "1g"}, NETWORK)
    assert caught.value.rule is Rule.NETWORK_RANGE_INCONSISTENT
    assert caught.value.options[1].key == "test.network.memory.min"


def test_read_fraction_without_bounds() -> None:
    assert read_fraction({NET_FRACTION.key: "0"}, NET_FRACTION, Rule.MANAGED_FRACTION_OUT_OF_RANGE, "0.4") == 0.0
    with pytest.raises(MemoryConflict) as caught:
        read_fraction({NET_FRACTION.key: "1"}, NET_FRACTION, Rule.MANAGED_FRACTION_OUT_OF_RANGE, "0.4")
    assert caught.value.rule is Rule.MANAGED_FRACTION_OUT_OF_RANGE and "0.4" in caught.value.fix


def test_clamp_tests_the_max_first() -> None:
    rf = RangeFraction(10, 20, 0.5)
    assert [clamp(x, rf) for x in (5, 10, 15, 20, 25)] == [10, 10, 15, 20, 20]


def test_fraction_and_inverse_fraction_products() -> None:
    rf = RangeFraction(0, MAX_BYTES, FLOAT_0_1)
    # Notes section 3.4: 4 GiB x 0.1f = 429496736; the inverse factor of 0.1f is 0.11111111295076065.
    assert fraction_of("Test", 4 * GIB, rf) == 429496736
    assert inverse_fraction_of("Test", 9 * GIB, rf) == int(9 * GIB * Fraction(Decimal("0.11111111295076065")))
    with pytest.raises(MemoryOverflow):
        inverse_fraction_of("Test", MAX_BYTES, RangeFraction(0, MAX_BYTES, 0.75))


def test_metaspace_and_overhead_around_a_given_total() -> None:
    notices: list[Notice] = []
    assert derive_metaspace_and_overhead({}, OPTIONS, GIB, notices) == (256 * MIB, 192 * MIB)
    assert [n.code for n in notices] == ["overhead-raised"]


def test_required_fine_grained_counts_deprecated_keys() -> None:
    managed = MemoryOption("test.memory.managed.size", None, ("test.memory.size",))
    options = ProcessMemoryOptions("TestRole", (TASK, managed), FLINK, PROCESS, METASPACE, OPTIONS.overhead)
    assert options.has_required_fine_grained({TASK.key: "1g", "test.memory.size": "1g"})
    assert not options.has_required_fine_grained({TASK.key: "1g"})


def test_no_sizing_option_names_fine_grained_options_that_go_together() -> None:
    options = ProcessMemoryOptions("TestRole", (TASK, MANAGED), FLINK, PROCESS, METASPACE, OPTIONS.overhead, "1728m")
    with pytest.raises(MemoryConflict) as caught:
        derive_process_memory({}, options, SimpleModel(), [])
    assert "test.memory.task.size and test.memory.managed.size together" in caught.value.problem
    assert "'1728m'" in caught.value.fix
