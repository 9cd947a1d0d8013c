"""Human-readable views of a resolved Flink process: the breakdown tree and the memory bar."""

from __future__ import annotations

from collections.abc import Sequence

from flinkmem.decisions.container import ContainerMemory
from flinkmem.engine import JobManagerMemory, TaskManagerMemory
from flinkmem.engine.javatext import java_double_to_string
from flinkmem.engine.sizes import format_size
from flinkmem.sources.roles import ProcessMemory

__all__ = ["memory_bar", "memory_table"]

Segment = tuple[str, str, int]  # bar character, legend, bytes


def _segments(memory: ProcessMemory) -> list[Segment]:
    if isinstance(memory, TaskManagerMemory):
        return [
            ("█", "framework heap", memory.framework_heap),
            ("▇", "task heap", memory.task_heap),
            ("▆", "framework off-heap", memory.framework_off_heap),
            ("▅", "task off-heap", memory.task_off_heap),
            ("▓", "network", memory.network),
            ("▒", "managed", memory.managed),
            ("░", "JVM metaspace", memory.metaspace),
            ("·", "JVM overhead", memory.overhead),
        ]
    if isinstance(memory, JobManagerMemory):
        return [
            ("█", "JVM heap", memory.heap),
            ("▓", "off-heap", memory.off_heap),
            ("▒", "JVM metaspace", memory.metaspace),
            ("░", "JVM overhead", memory.overhead),
        ]
    raise TypeError(f"no breakdown for {type(memory).__name__}")


def memory_bar(memory: ProcessMemory, width: int = 60) -> str:
    """A bar whose segments are proportional to the process's memory components."""
    segments = _segments(memory)
    parts = [size for _, _, size in segments]
    total = sum(parts)
    if total == 0:
        return "[" + " " * width + "]"
    cells = [round(width * p / total) for p in parts]
    # Every non-empty component stays visible, even when tiny next to a huge heap.
    for index, part in enumerate(parts):
        if part and cells[index] == 0:
            cells[index] = 1
    while sum(cells) > width:
        cells[cells.index(max(cells))] -= 1
    while sum(cells) < width:
        cells[cells.index(max(cells))] += 1
    bar = "".join(char * n for (char, _, _), n in zip(segments, cells, strict=True))
    legend = "  ".join(f"{char} {name}" for char, name, _ in segments)
    return f"[{bar}]\n {legend}"


def _rows(memory: ProcessMemory) -> Sequence[tuple[str, int, int]]:
    if isinstance(memory, TaskManagerMemory):
        return [
            ("Total Process Memory:", memory.total_process, 0),
            ("Total Flink Memory:", memory.total_flink, 2),
            ("Framework Heap:", memory.framework_heap, 4),
            ("Task Heap:", memory.task_heap, 4),
            ("Framework Off-heap:", memory.framework_off_heap, 4),
            ("Task Off-heap:", memory.task_off_heap, 4),
            ("Network:", memory.network, 4),
            ("Managed:", memory.managed, 4),
            ("JVM Metaspace:", memory.metaspace, 2),
            ("JVM Overhead:", memory.overhead, 2),
        ]
    if isinstance(memory, JobManagerMemory):
        return [
            ("Total Process Memory:", memory.total_process, 0),
            ("Total Flink Memory:", memory.total_flink, 2),
            ("JVM Heap:", memory.heap, 4),
            ("Off-heap:", memory.off_heap, 4),
            ("JVM Metaspace:", memory.metaspace, 2),
            ("JVM Overhead:", memory.overhead, 2),
        ]
    raise TypeError(f"no breakdown for {type(memory).__name__}")


def memory_table(memory: ProcessMemory, container: ContainerMemory | None = None) -> str:
    """The breakdown tree, the bar, the JVM flags and `-D` options Flink generates, and the container."""
    if not isinstance(memory, JobManagerMemory | TaskManagerMemory):
        raise TypeError(f"no breakdown for {type(memory).__name__}")
    role = "TaskManager" if isinstance(memory, TaskManagerMemory) else "JobManager"
    lines = [f"{role} memory, Flink {memory.version}, {memory.mode.value} mode"]
    for label, size, indent in _rows(memory):
        lines.append(f"  {' ' * indent}{label:<{24 - indent}}{format_size(size)}")
    lines.append("")
    lines.append(memory_bar(memory))
    lines.append("")
    if isinstance(memory, TaskManagerMemory):
        resources = ", ".join(f"{name} {amount}" for name, amount in memory.external_resources)
        cpu = f"{java_double_to_string(memory.cpu_cores)} CPU cores, {memory.slots} slots"
        lines.append(f"Resources:        {cpu}{', ' + resources if resources else ''}")
    lines.append(f"JVM flags:        {memory.jvm_args}")
    lines.append(f"Dynamic configs:  {memory.dynamic_configs}")
    if container is not None:
        lines.append(
            f"Container memory: request {container.request}, limit {container.limit} "
            f"(Flink itself would set {container.flink_request_mib}Mi / {container.flink_limit_mib}Mi)"
        )
    for notice in memory.notices:
        prefix = "Warning" if notice.level == "warning" else "Note"
        lines.append(f"{prefix}: {notice.message}")
    return "\n".join(lines)
