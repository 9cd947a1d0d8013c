"""The process memory derivation shared by every Flink process role.

Flink sizes a process from one of three starting points, in this order of precedence: the role's
required fine-grained options (for the JobManager, the JVM heap), the total Flink memory, or the
total process memory. The JVM metaspace and overhead are then fitted around the total Flink memory.
That skeleton is common to JobManager and TaskManager; only the split of the total Flink memory is
role-specific, and is supplied by a `FlinkMemoryModel`. The order of reads and checks follows Flink,
since it decides which problem is reported when several are present.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

from flinkmem.engine.errors import FlinkMemError, MemoryConflict, MemoryOverflow, OptionValue, Rule
from flinkmem.engine.options import Config, FloatOption, MemoryOption, option_value, repr_fraction
from flinkmem.engine.sizes import SizeOverflow, checked_add, format_size, multiply

__all__ = [
    "FlinkMemory",
    "FlinkMemoryModel",
    "Notice",
    "OverheadOptions",
    "ProcessMemoryOptions",
    "ProcessMemorySpec",
    "RangeFraction",
    "RangeOptions",
    "clamp",
    "derive_metaspace_and_overhead",
    "derive_process_memory",
    "fraction_of",
    "guarded_sum",
    "inverse_fraction_of",
    "overflow_guard",
    "read_fraction",
    "read_range",
]


class Notice(NamedTuple):
    """Something worth telling the user about an accepted configuration."""

    code: str
    message: str
    level: str = "warning"


@dataclass(frozen=True)
class RangeOptions:
    """A component sized as a fraction of a base and kept within [min, max] (Flink's RangeFraction)."""

    min: MemoryOption
    max: MemoryOption
    fraction: FloatOption
    rule: Rule = Rule.OVERHEAD_RANGE_INCONSISTENT


# The JVM overhead range, the one every process role has.
OverheadOptions = RangeOptions


@dataclass(frozen=True)
class ProcessMemoryOptions:
    """Which options play which part for one process role."""

    role: str
    required_fine_grained: tuple[MemoryOption, ...]
    total_flink: MemoryOption
    total_process: MemoryOption
    metaspace: MemoryOption
    overhead: RangeOptions
    # A process size to suggest when none is usable (the size of Flink's default configuration file).
    example_process_size: str = "1600m"

    @functools.cached_property
    def required_fine_grained_keys(self) -> tuple[str, ...]:
        return tuple(o.key for o in self.required_fine_grained)

    @functools.cached_property
    def required_fine_grained_have_fallbacks(self) -> bool:
        return any(o.fallback_keys for o in self.required_fine_grained)

    def has_required_fine_grained(self, config: Config) -> bool:
        if self.required_fine_grained_have_fallbacks:
            return all(o.present(config) for o in self.required_fine_grained)
        return all(key in config for key in self.required_fine_grained_keys)


class FlinkMemory(Protocol):
    @property
    def total_flink(self) -> int: ...


FM = TypeVar("FM", bound=FlinkMemory)
FM_co = TypeVar("FM_co", bound=FlinkMemory, covariant=True)


class FlinkMemoryModel(Protocol[FM_co]):
    """The role-specific split of total Flink memory (heap/off-heap for the JobManager)."""

    def from_required_fine_grained(self, config: Config, notices: list[Notice]) -> FM_co: ...

    def from_total_flink(self, config: Config, total_flink: int, source: MemoryOption, notices: list[Notice]) -> FM_co:
        """Splits `total_flink`, which came from `source` (the total Flink or total process option)."""
        ...


# Tuples rather than frozen dataclasses for the intermediate results: just as immutable, and much
# cheaper to build, which shows in `resolve --batch`.
class ProcessMemorySpec(NamedTuple, Generic[FM]):
    """A fully derived process: the role's Flink memory plus JVM metaspace and overhead."""

    flink: FM
    metaspace: int
    overhead: int
    total_process: int

    @property
    def total_flink(self) -> int:
        return self.flink.total_flink


class RangeFraction(NamedTuple):
    min: int
    max: int
    fraction: float


T = TypeVar("T")


def _overflow(role: str, exc: SizeOverflow, options: tuple[OptionValue, ...]) -> MemoryOverflow:
    return MemoryOverflow(
        Rule.SIZE_OVERFLOW,
        f"The {role} memory sizes add up to more than 2^63-1 bytes ({exc}).",
        "use realistic sizes; no component may be larger than a few TiB",
        options,
    )


def overflow_guard(role: str, compute: Callable[[], T], options: tuple[OptionValue, ...] = ()) -> T:
    """Runs `compute`, turning 64-bit overflow into the error Flink's ArithmeticException stands for."""
    try:
        return compute()
    except SizeOverflow as exc:
        raise _overflow(role, exc, options) from None


def guarded_sum(role: str, *sizes: int, options: tuple[OptionValue, ...] = ()) -> int:
    """`checked_add` with overflow reported as `overflow_guard` reports it (and no closure to build)."""
    try:
        return checked_add(*sizes)
    except SizeOverflow as exc:
        raise _overflow(role, exc, options) from None


def clamp(raw: int, rf: RangeFraction) -> int:
    """Flink's cap of a derived size: the max is tested first, then the min."""
    if raw > rf.max:
        return rf.max
    if raw < rf.min:
        return rf.min
    return raw


def fraction_of(role: str, base: int, rf: RangeFraction) -> int:
    """`base` times the range's fraction (Flink's `MemorySize.multiply`), before capping."""
    return overflow_guard(role, lambda: multiply(base, rf.fraction))


def inverse_fraction_of(role: str, base: int, rf: RangeFraction) -> int:
    """The size that is the range's fraction of `base` plus itself: `base * f / (1 - f)`, before capping."""
    inverse = rf.fraction / (1 - rf.fraction)
    return overflow_guard(role, lambda: multiply(base, inverse))


def read_range(config: Config, options: RangeOptions, example: str = "0.1") -> RangeFraction:
    """Reads min, max and fraction in Flink's order and checks min <= max and 0 <= fraction < 1."""
    low = options.min.read(config)
    high = options.max.read(config)
    fraction = options.fraction.read(config)
    if low <= high and 0 <= fraction < 1:
        return RangeFraction(low, high, fraction)
    involved = (
        option_value(config, options.fraction, fraction),
        option_value(config, options.min, low),
        option_value(config, options.max, high),
    )
    if low > high:
        raise MemoryConflict(
            options.rule,
            f"{options.min.key} ({format_size(low)}) is larger than {options.max.key} ({format_size(high)}).",
            f"make {options.min.key} less than or equal to {options.max.key}",
            involved,
        )
    raise MemoryConflict(
        options.rule,
        f"{options.fraction.key} is {repr_fraction(fraction)}, outside the allowed range [0, 1).",
        f"set {options.fraction.key} to a fraction such as {example} (at least 0, below 1)",
        involved,
    )


def read_fraction(config: Config, option: FloatOption, rule: Rule, example: str) -> float:
    """A fraction whose range is [0, LONG_MAX] (so only the fraction itself can be wrong)."""
    fraction = option.read(config)
    if 0 <= fraction < 1:
        return fraction
    raise MemoryConflict(
        rule,
        f"{option.key} is {repr_fraction(fraction)}, outside the allowed range [0, 1).",
        f"set {option.key} to a fraction such as {example} (at least 0, below 1)",
        (option_value(config, option, fraction),),
    )


def derive_metaspace_and_overhead(
    config: Config, options: ProcessMemoryOptions, total_flink: int, notices: list[Notice]
) -> tuple[int, int]:
    """JVM metaspace and overhead around a given Total Flink Memory (the second half of every path)."""
    return _Deriver(config, options, notices).metaspace_and_overhead_from_total_flink(total_flink)


def derive_process_memory(
    config: Config, options: ProcessMemoryOptions, model: FlinkMemoryModel[FM], notices: list[Notice]
) -> ProcessMemorySpec[FM]:
    deriver = _Deriver(config, options, notices)
    if options.has_required_fine_grained(config):
        flink = model.from_required_fine_grained(config, notices)
        total_flink = overflow_guard(options.role, lambda: flink.total_flink)
        metaspace, overhead = deriver.metaspace_and_overhead_from_total_flink(total_flink)
    elif options.total_flink.key in config:
        total_flink = options.total_flink.read(config)
        flink = model.from_total_flink(config, total_flink, options.total_flink, notices)
        metaspace, overhead = deriver.metaspace_and_overhead_from_total_flink(total_flink)
    elif options.total_process.key in config:
        total_process = options.total_process.read(config)
        metaspace, overhead = deriver.metaspace_and_overhead_from_total_process(total_process)
        total_flink = total_process - metaspace - overhead
        flink = model.from_total_flink(config, total_flink, options.total_process, notices)
    else:
        raise deriver.no_sizing_option()
    total = guarded_sum(options.role, total_flink, metaspace, overhead)
    return ProcessMemorySpec(flink, metaspace, overhead, total)


class _Deriver:
    """The metaspace/overhead half of the derivation, bound to one configuration."""

    def __init__(self, config: Config, options: ProcessMemoryOptions, notices: list[Notice]) -> None:
        self.config = config
        self.options = options
        self.notices = notices

    def _value(self, option: MemoryOption | FloatOption, effective: int | float) -> OptionValue:
        return option_value(self.config, option, effective)

    def no_sizing_option(self) -> MemoryConflict:
        opts = self.options
        fine_grained = [o.key for o in opts.required_fine_grained]
        keys = [*fine_grained, opts.total_flink.key, opts.total_process.key]
        if len(fine_grained) == 1:
            needs = f"one of {', '.join(keys)}"
        else:
            needs = f"{' and '.join(fine_grained)} together, or {opts.total_flink.key}, or {opts.total_process.key}"
        return MemoryConflict(
            Rule.NO_SIZING_OPTION,
            f"No {opts.role} memory size is configured: Flink needs {needs}.",
            f"set {opts.total_process.key} (for example '{opts.example_process_size}'), "
            f"the size of the whole {opts.role} process",
            tuple(OptionValue(k, None) for k in keys),
        )

    def range_fraction(self) -> RangeFraction:
        return read_range(self.config, self.options.overhead)

    def _cap(self, raw: int, rf: RangeFraction) -> int:
        if raw > rf.max:
            self.notices.append(
                Notice(
                    "overhead-capped",
                    f"JVM overhead from the fraction ({format_size(raw)}) is above its max; "
                    f"using {format_size(rf.max)}",
                    "info",
                )
            )
            return rf.max
        if raw < rf.min:
            self.notices.append(
                Notice(
                    "overhead-raised",
                    f"JVM overhead from the fraction ({format_size(raw)}) is below its min; "
                    f"using {format_size(rf.min)}",
                    "info",
                )
            )
            return rf.min
        return raw

    def metaspace_and_overhead_from_total_process(self, total_process: int) -> tuple[int, int]:
        opts = self.options
        metaspace = opts.metaspace.read(self.config)
        rf = self.range_fraction()
        overhead = self._cap(multiply(total_process, rf.fraction), rf)
        jvm_total = guarded_sum(opts.role, metaspace, overhead)
        if jvm_total > total_process:
            raise MemoryConflict(
                Rule.METASPACE_AND_OVERHEAD_EXCEED_PROCESS,
                f"{opts.total_process.key} is {format_size(total_process)}, but JVM metaspace "
                f"({format_size(metaspace)}) and JVM overhead ({format_size(overhead)}) alone need "
                f"{format_size(jvm_total)}, leaving nothing for Flink.",
                f"raise {opts.total_process.key} well above {format_size(jvm_total)} (the default "
                f"'{opts.example_process_size}' is a good start), or lower {opts.metaspace.key} / "
                f"{opts.overhead.min.key}",
                (
                    self._value(opts.total_process, total_process),
                    self._value(opts.metaspace, metaspace),
                    self._value(opts.overhead.min, rf.min),
                    self._value(opts.overhead.fraction, rf.fraction),
                ),
            )
        return metaspace, overhead

    def metaspace_and_overhead_from_total_flink(self, total_flink: int) -> tuple[int, int]:
        opts = self.options
        metaspace = opts.metaspace.read(self.config)
        flink_and_meta = guarded_sum(opts.role, total_flink, metaspace)
        if opts.total_process.key in self.config:
            return metaspace, self._overhead_as_remainder(total_flink, metaspace, flink_and_meta)
        rf = self.range_fraction()
        return metaspace, self._cap(inverse_fraction_of(opts.role, flink_and_meta, rf), rf)

    def _with_min_overhead(self, size: int) -> int:
        """`size` plus the minimum JVM overhead, for advice only: an unreadable minimum counts as zero."""
        try:
            return size + self.options.overhead.min.read(self.config)
        except FlinkMemError:
            return size

    def _overhead_as_remainder(self, total_flink: int, metaspace: int, flink_and_meta: int) -> int:
        opts = self.options
        total_process = opts.total_process.read(self.config)
        if total_process < flink_and_meta:
            raise MemoryConflict(
                Rule.PROCESS_BELOW_FLINK_PLUS_METASPACE,
                f"{opts.total_process.key} ({format_size(total_process)}) is smaller than the Total Flink "
                f"Memory ({format_size(total_flink)}) plus JVM metaspace ({format_size(metaspace)}) "
                "it must contain.",
                f"raise {opts.total_process.key} to at least {format_size(self._with_min_overhead(flink_and_meta))}"
                f" (Flink memory, metaspace and the minimum JVM overhead), lower the heap/Flink memory, or remove "
                f"{opts.total_process.key} and let Flink derive it",
                (
                    self._value(opts.total_process, total_process),
                    OptionValue("Total Flink Memory", None, format_size(total_flink)),
                    self._value(opts.metaspace, metaspace),
                ),
            )
        overhead = total_process - flink_and_meta
        rf = self.range_fraction()
        if overhead > rf.max or overhead < rf.min:
            low = flink_and_meta + rf.min
            high = flink_and_meta + rf.max
            raise MemoryConflict(
                Rule.DERIVED_OVERHEAD_OUT_OF_RANGE,
                f"{opts.total_process.key} ({format_size(total_process)}) minus Total Flink Memory "
                f"({format_size(total_flink)}) and JVM metaspace ({format_size(metaspace)}) leaves "
                f"{format_size(overhead)} of JVM overhead, outside the allowed range "
                f"[{format_size(rf.min)}, {format_size(rf.max)}].",
                f"set {opts.total_process.key} between {format_size(low)} and {format_size(high)}, "
                f"adjust {opts.overhead.min.key}/{opts.overhead.max.key}, or remove "
                f"{opts.total_process.key} so Flink derives it",
                (
                    self._value(opts.total_process, total_process),
                    OptionValue("Total Flink Memory", None, format_size(total_flink)),
                    self._value(opts.metaspace, metaspace),
                    self._value(opts.overhead.min, rf.min),
                    self._value(opts.overhead.max, rf.max),
                ),
            )
        if opts.overhead.fraction.key in self.config and overhead != multiply(total_process, rf.fraction):
            self.notices.append(
                Notice(
                    "overhead-fraction-ignored",
                    f"JVM overhead is the remainder {format_size(overhead)}; {opts.overhead.fraction.key} is not used",
                    "info",
                )
            )
        return overhead
