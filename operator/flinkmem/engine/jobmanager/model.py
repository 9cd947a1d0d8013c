"""The JobManager's split of Total Flink Memory into JVM heap and off-heap (Flink's `JobManagerFlinkMemoryUtils`)."""

from __future__ import annotations

from typing import NamedTuple

from flinkmem.engine.errors import MemoryConflict, Rule
from flinkmem.engine.jobmanager.options import HEAP, MIN_HEAP, OFF_HEAP, TOTAL_FLINK
from flinkmem.engine.options import Config, MemoryOption, option_value
from flinkmem.engine.process import Notice, guarded_sum
from flinkmem.engine.sizes import checked_add, format_size

__all__ = ["MODEL", "JobManagerFlinkMemory"]


class JobManagerFlinkMemory(NamedTuple):
    heap: int
    off_heap: int

    @property
    def total_flink(self) -> int:
        return checked_add(self.heap, self.off_heap)


class _JobManagerModel:
    """The JobManager's split of Total Flink Memory into JVM heap and off-heap."""

    def _create(self, heap: int, off_heap: int, notices: list[Notice]) -> JobManagerFlinkMemory:
        if heap < MIN_HEAP:
            notices.append(
                Notice(
                    "heap-below-minimum",
                    f"JVM heap {format_size(heap)} is below the recommended minimum of 128 MiB",
                )
            )
        return JobManagerFlinkMemory(heap, off_heap)

    def from_required_fine_grained(self, config: Config, notices: list[Notice]) -> JobManagerFlinkMemory:
        heap = HEAP.read(config)
        off_heap = OFF_HEAP.read(config)
        if TOTAL_FLINK.key in config:
            total_flink = TOTAL_FLINK.read(config)
            involved = (
                option_value(config, HEAP, heap),
                option_value(config, OFF_HEAP, off_heap),
                option_value(config, TOTAL_FLINK, total_flink),
            )
            if OFF_HEAP.key in config:
                derived = guarded_sum("JobManager", heap, off_heap, options=involved)
                if derived != total_flink:
                    raise MemoryConflict(
                        Rule.HEAP_PLUS_OFF_HEAP_MISMATCH,
                        f"{HEAP.key} ({format_size(heap)}) plus {OFF_HEAP.key} ({format_size(off_heap)}) "
                        f"is {format_size(derived)}, but {TOTAL_FLINK.key} is {format_size(total_flink)}.",
                        f"set only two of the three options, or make heap + off-heap equal {TOTAL_FLINK.key}",
                        involved,
                    )
            else:
                if heap > total_flink:
                    raise MemoryConflict(
                        Rule.HEAP_EXCEEDS_FLINK,
                        f"{HEAP.key} ({format_size(heap)}) is larger than {TOTAL_FLINK.key} "
                        f"({format_size(total_flink)}), which must contain it.",
                        f"raise {TOTAL_FLINK.key} above {format_size(heap)} or set only one of the two",
                        involved,
                    )
                off_heap = total_flink - heap
                if off_heap != OFF_HEAP.default:
                    notices.append(
                        Notice(
                            "off-heap-derived",
                            f"off-heap memory is {TOTAL_FLINK.key} minus {HEAP.key} = {format_size(off_heap)}",
                            "info",
                        )
                    )
        return self._create(heap, off_heap, notices)

    def from_total_flink(
        self, config: Config, total_flink: int, source: MemoryOption, notices: list[Notice]
    ) -> JobManagerFlinkMemory:
        off_heap = OFF_HEAP.read(config)
        if total_flink <= off_heap:
            derived = "" if source is TOTAL_FLINK else f", what {source.key} leaves after metaspace and overhead"
            raise MemoryConflict(
                Rule.FLINK_NOT_ABOVE_OFF_HEAP,
                f"Total Flink Memory ({format_size(total_flink)}{derived}) is not larger than {OFF_HEAP.key} "
                f"({format_size(off_heap)}), so nothing is left for the JVM heap.",
                f"raise {source.key} or lower {OFF_HEAP.key} below {format_size(total_flink)}",
                (option_value(config, source, config_size(config, source)), option_value(config, OFF_HEAP, off_heap)),
            )
        return self._create(total_flink - off_heap, off_heap, notices)


MODEL = _JobManagerModel()


def config_size(config: Config, option: MemoryOption) -> int:
    """The option's size for an error message; only called after it was read successfully."""
    return option.read(config)
