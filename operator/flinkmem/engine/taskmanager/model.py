"""The TaskManager's split of Total Flink Memory (Flink's `TaskExecutorFlinkMemoryUtils`).

Network memory comes from its fraction within [min, max] (silently capped), or, when task heap and
managed memory are given with a total, is the checked remainder; 1.x can size it from the legacy
buffer count instead. Managed memory is its size or its fraction of the total. Every refusal carries
the size that would work, found by `engine.advice`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

from flinkmem.engine.advice import least_total_flink, raise_total_fix
from flinkmem.engine.errors import FlinkMemError, InvalidOptionValue, MemoryConflict, OptionValue, Rule
from flinkmem.engine.options import Config, MemoryOption, configured_text, java_text, option_value
from flinkmem.engine.process import (
    Notice,
    RangeFraction,
    RangeOptions,
    clamp,
    fraction_of,
    guarded_sum,
    inverse_fraction_of,
    read_fraction,
    read_range,
)
from flinkmem.engine.sizes import MAX_BYTES, checked_add, format_size, multiply
from flinkmem.engine.taskmanager.options import (
    FRAMEWORK_HEAP,
    FRAMEWORK_OFF_HEAP,
    MANAGED_FRACTION,
    MANAGED_SIZE,
    MIN_SEGMENT_SIZE,
    NETWORK_BUFFERS,
    NETWORK_FRACTION,
    NETWORK_KEYS,
    NETWORK_MAX,
    NETWORK_MIN,
    ROLE,
    SEGMENT_SIZE,
    TASK_HEAP,
    TASK_OFF_HEAP,
    TASKMANAGER_OPTIONS,
    TOTAL_FLINK,
    network_options,
)

__all__ = ["TaskManagerFlinkMemory", "model_for"]


class TaskManagerFlinkMemory(NamedTuple):
    framework_heap: int
    framework_off_heap: int
    task_heap: int
    task_off_heap: int
    network: int
    managed: int

    @property
    def total_flink(self) -> int:
        return checked_add(*self)


def _fs(size: int) -> str:
    return format_size(size)


def _size_of(config: Config, option: MemoryOption, value: int) -> OptionValue:
    return option_value(config, option, value)


class _TaskManagerModel:
    """The TaskManager's split of Total Flink Memory (Flink's `TaskExecutorFlinkMemoryUtils`)."""

    def __init__(self, legacy_network: bool, network: RangeOptions) -> None:
        # 1.x sizes the network from `taskmanager.network.numberOfBuffers` when no network option is set.
        self.legacy_network = legacy_network
        # The network's min, max and fraction options, with the line's default maximum.
        self.network = network

    # --- network memory ----------------------------------------------------------------------

    def _uses_buffer_count(self, config: Config) -> bool:
        return self.legacy_network and NETWORK_BUFFERS.key in config and not any(key in config for key in NETWORK_KEYS)

    def _buffers_size(self, config: Config) -> int:
        """1.x: the network size as a number of buffers times the memory segment size."""
        buffers = NETWORK_BUFFERS.read(config)
        segment = SEGMENT_SIZE.read(config)
        involved = (OptionValue(SEGMENT_SIZE.key, configured_text(config, SEGMENT_SIZE.key), _fs(segment)),)
        if segment >= 1 << 31:
            problem = "larger than Flink's 2 GiB maximum"
        elif segment < MIN_SEGMENT_SIZE:
            problem = "smaller than the minimum of 4096 bytes"
        elif segment & (segment - 1):
            problem = "not a power of two"
        else:
            problem = ""
        if problem:
            raise InvalidOptionValue(
                Rule.INVALID_VALUE,
                f"{SEGMENT_SIZE.key} is {_fs(segment)}, {problem}.",
                f"set {SEGMENT_SIZE.key} to a power of two of at least 4096 bytes, such as 32k",
                involved,
            )
        if buffers < 0:
            raise InvalidOptionValue(
                Rule.INVALID_VALUE,
                f"{NETWORK_BUFFERS.key} is {buffers}, a negative count.",
                f"remove {NETWORK_BUFFERS.key} and set {NETWORK_MIN.key} and {NETWORK_MAX.key} instead",
                (OptionValue(NETWORK_BUFFERS.key, java_text(config[NETWORK_BUFFERS.key])),),
            )
        return buffers * segment

    def _network_from_fraction(
        self, config: Config, base: int, derive: Callable[[str, int, RangeFraction], int], notices: list[Notice]
    ) -> int:
        if self._uses_buffer_count(config):
            return self._buffers_size(config)
        rf = read_range(config, self.network, "0.1")
        raw = derive(ROLE, base, rf)
        network = clamp(raw, rf)
        if network != raw:
            bound, key = ("capped at", NETWORK_MAX.key) if raw > rf.max else ("raised to", NETWORK_MIN.key)
            notices.append(
                Notice(
                    "network-capped",
                    f"network memory: the fraction gives {_fs(raw)}, {bound} {key} {_fs(network)}",
                )
            )
        return network

    def _check_network_remainder(
        self, config: Config, network: int, total_flink: int, task_heap: int, notices: list[Notice]
    ) -> None:
        """Task heap and managed memory given with a total: the network is what is left, and must fit."""
        if self._uses_buffer_count(config):
            expected = self._buffers_size(config)
            if network != expected:
                heap_for_match = task_heap + network - expected
                raise MemoryConflict(
                    Rule.NETWORK_BUFFERS_MISMATCH,
                    f"The network memory is what the other components leave of the Total Flink Memory "
                    f"({_fs(total_flink)}): {_fs(network)}, but {NETWORK_BUFFERS.key} x {SEGMENT_SIZE.key} "
                    f"is {_fs(expected)}.",
                    (
                        f"set {TASK_HEAP.key} to {_fs(heap_for_match)} so the network memory is {_fs(expected)}, "
                        if heap_for_match >= 0
                        else ""
                    )
                    + f"or replace {NETWORK_BUFFERS.key} by {NETWORK_MIN.key} and {NETWORK_MAX.key}",
                    (
                        OptionValue(NETWORK_BUFFERS.key, java_text(config[NETWORK_BUFFERS.key])),
                        OptionValue("Total Flink Memory", None, _fs(total_flink)),
                    ),
                )
            return
        rf = read_range(config, self.network, "0.1")
        if network > rf.max or network < rf.min:
            involved = (
                _size_of(config, NETWORK_MIN, rf.min),
                _size_of(config, NETWORK_MAX, rf.max),
                OptionValue(TASK_HEAP.key, configured_text(config, TASK_HEAP.key), _fs(task_heap)),
                OptionValue("Total Flink Memory", None, _fs(total_flink)),
            )
            if network > rf.max:
                fix = (
                    f"raise {TASK_HEAP.key} to {_fs(task_heap + network - rf.max)} (the network keeps its max), "
                    f"or raise {NETWORK_MAX.key} to {_fs(network)}"
                )
            elif task_heap >= rf.min - network:
                fix = (
                    f"lower {TASK_HEAP.key} to {_fs(task_heap - (rf.min - network))} (the network gets its min), "
                    f"or lower {NETWORK_MIN.key} to {_fs(network)}"
                )
            else:
                fix = f"lower {NETWORK_MIN.key} to {_fs(network)}, or raise the Total Flink Memory"
            raise MemoryConflict(
                Rule.DERIVED_NETWORK_OUT_OF_RANGE,
                f"The network memory is what the other components leave of the Total Flink Memory "
                f"({_fs(total_flink)}): {_fs(network)}, outside [{_fs(rf.min)}, {_fs(rf.max)}] "
                f"({NETWORK_MIN.key}/max).",
                fix,
                involved,
            )
        if NETWORK_FRACTION.present(config) and network != multiply(total_flink, rf.fraction):
            notices.append(
                Notice(
                    "network-fraction-ignored",
                    f"network memory is the remainder {_fs(network)}; {NETWORK_FRACTION.key} is not used",
                    "info",
                )
            )

    # --- managed memory ----------------------------------------------------------------------

    @staticmethod
    def _managed(config: Config, total_flink: int) -> int:
        if MANAGED_SIZE.present(config):
            return MANAGED_SIZE.read(config)
        fraction = read_fraction(config, MANAGED_FRACTION, Rule.MANAGED_FRACTION_OUT_OF_RANGE, "0.4")
        return fraction_of(ROLE, total_flink, RangeFraction(0, MAX_BYTES, fraction))

    # --- the two entry points of the generic derivation ----------------------------------------

    def from_required_fine_grained(self, config: Config, notices: list[Notice]) -> TaskManagerFlinkMemory:
        task_heap = TASK_HEAP.read(config)
        managed = MANAGED_SIZE.read(config)
        framework_heap = FRAMEWORK_HEAP.read(config)
        framework_off_heap = FRAMEWORK_OFF_HEAP.read(config)
        task_off_heap = TASK_OFF_HEAP.read(config)
        parts = (framework_heap, framework_off_heap, task_heap, task_off_heap, managed)
        base = guarded_sum(ROLE, *parts)
        if TOTAL_FLINK.key in config:
            total_flink = TOTAL_FLINK.read(config)
            if base > total_flink:
                raise self._fine_grained_exceed(config, parts, base, total_flink, TOTAL_FLINK, None)
            network = total_flink - base
            self._check_network_remainder(config, network, total_flink, task_heap, notices)
        else:
            network = self._network_from_fraction(config, base, inverse_fraction_of, notices)
        return TaskManagerFlinkMemory(framework_heap, framework_off_heap, task_heap, task_off_heap, network, managed)

    def from_total_flink(
        self, config: Config, total_flink: int, source: MemoryOption, notices: list[Notice]
    ) -> TaskManagerFlinkMemory:
        framework_heap = FRAMEWORK_HEAP.read(config)
        framework_off_heap = FRAMEWORK_OFF_HEAP.read(config)
        task_off_heap = TASK_OFF_HEAP.read(config)
        if TASK_HEAP.key in config:
            task_heap = TASK_HEAP.read(config)
            managed = self._managed(config, total_flink)
            parts = (framework_heap, framework_off_heap, task_heap, task_off_heap, managed)
            base = guarded_sum(ROLE, *parts)
            if base > total_flink:
                raise self._fine_grained_exceed(config, parts, base, total_flink, source, self._managed)
            network = total_flink - base
            self._check_network_remainder(config, network, total_flink, task_heap, notices)
        else:
            managed = self._managed(config, total_flink)
            network = self._network_from_fraction(config, total_flink, fraction_of, notices)
            parts = (framework_heap, framework_off_heap, task_off_heap, managed, network)
            rest = guarded_sum(ROLE, *parts)
            if rest > total_flink:
                raise self._no_room_for_task_heap(config, parts, rest, total_flink, source)
            task_heap = total_flink - rest
        return TaskManagerFlinkMemory(framework_heap, framework_off_heap, task_heap, task_off_heap, network, managed)

    # --- refusals, each with the size that would work -------------------------------------------

    def _network_floor(self, config: Config) -> int:
        """The least network memory a remainder may be (for advice; unreadable options count as 0)."""
        try:
            if self._uses_buffer_count(config):
                return self._buffers_size(config)
            return NETWORK_MIN.read(config)
        except FlinkMemError:
            return 0

    def _fine_grained_exceed(
        self,
        config: Config,
        parts: tuple[int, ...],
        base: int,
        total_flink: int,
        source: MemoryOption,
        managed_of: Callable[[Config, int], int] | None,
    ) -> MemoryConflict:
        framework_heap, framework_off_heap, task_heap, task_off_heap, managed = parts
        floor = self._network_floor(config)
        if managed_of is None:
            needed: int | None = base + floor
        else:
            fixed = framework_heap + framework_off_heap + task_heap + task_off_heap + floor
            needed = least_total_flink(lambda flink: flink - managed_of(config, flink) >= fixed)
        derived = "" if source is TOTAL_FLINK else f", what {source.key} leaves after metaspace and overhead"
        problem = (
            f"Framework heap ({_fs(framework_heap)}), framework off-heap ({_fs(framework_off_heap)}), "
            f"task heap ({_fs(task_heap)}), task off-heap ({_fs(task_off_heap)}) and managed memory "
            f"({_fs(managed)}) add up to {_fs(base)}, more than the Total Flink Memory ({_fs(total_flink)}{derived})."
        )
        lower = f"lower {TASK_HEAP.key} or the managed memory"
        fix = raise_total_fix(config, TASKMANAGER_OPTIONS, source, needed, lower)
        involved = (
            OptionValue(TASK_HEAP.key, configured_text(config, TASK_HEAP.key), _fs(task_heap)),
            OptionValue(MANAGED_SIZE.key, configured_text(config, *MANAGED_SIZE.keys), _fs(managed)),
            OptionValue(source.key, configured_text(config, source.key), _fs(total_flink)),
        )
        return MemoryConflict(Rule.FINE_GRAINED_EXCEEDS_FLINK, problem, fix, involved)

    def _no_room_for_task_heap(
        self, config: Config, parts: tuple[int, ...], rest: int, total_flink: int, source: MemoryOption
    ) -> MemoryConflict:
        framework_heap, framework_off_heap, task_off_heap, managed, network = parts
        fixed = framework_heap + framework_off_heap + task_off_heap

        def fits(flink: int) -> bool:
            try:
                managed_part = self._managed(config, flink)
                network_part = self._network_from_fraction(config, flink, fraction_of, [])
            except FlinkMemError:
                return False
            return fixed + managed_part + network_part <= flink

        derived = "" if source is TOTAL_FLINK else f", what {source.key} leaves after metaspace and overhead"
        problem = (
            f"Framework heap ({_fs(framework_heap)}), framework off-heap ({_fs(framework_off_heap)}), "
            f"task off-heap ({_fs(task_off_heap)}), managed ({_fs(managed)}) and network memory "
            f"({_fs(network)}) add up to {_fs(rest)}, more than the Total Flink Memory "
            f"({_fs(total_flink)}{derived}), leaving nothing for the task heap."
        )
        lower = f"lower {MANAGED_FRACTION.key} or {NETWORK_FRACTION.key}"
        fix = raise_total_fix(config, TASKMANAGER_OPTIONS, source, least_total_flink(fits), lower)
        involved = (
            OptionValue(source.key, configured_text(config, source.key), _fs(total_flink)),
            OptionValue(
                "managed memory", configured_text(config, *MANAGED_SIZE.keys, MANAGED_FRACTION.key), _fs(managed)
            ),
            OptionValue("network memory", configured_text(config, *NETWORK_KEYS), _fs(network)),
        )
        return MemoryConflict(Rule.NO_ROOM_FOR_TASK_HEAP, problem, fix, involved)


@functools.cache
def model_for(legacy_network: bool, network_max_default: int) -> _TaskManagerModel:
    """The split of a line that does (1.x) or does not read the legacy buffer count, whose network
    maximum defaults to `network_max_default` (`engine.lines.FlinkLine`)."""
    return _TaskManagerModel(legacy_network, network_options(network_max_default))
