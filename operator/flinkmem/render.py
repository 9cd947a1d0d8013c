"""Human-readable views of a resolved Flink process: the breakdown tree and the memory bar."""

from __future__ import annotations

from flinkmem.engine import JobManagerMemory
from flinkmem.engine.sizes import format_size
from flinkmem.roles import ProcessMemory
from flinkmem.sizing import ContainerMemory

__all__ = ["memory_bar", "memory_table"]

_SEGMENTS = (("█", "JVM heap"), ("▓", "off-heap"), ("▒", "JVM metaspace"), ("░", "JVM overhead"))


def memory_bar(memory: JobManagerMemory, width: int = 60) -> str:
    """A bar whose segments are proportional to heap, off-heap, metaspace and overhead."""
    parts = (memory.heap, memory.off_heap, memory.metaspace, memory.overhead)
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
    bar = "".join(char * n for (char, _), n in zip(_SEGMENTS, cells, strict=True))
    legend = "  ".join(f"{char} {name}" for char, name in _SEGMENTS)
    return f"[{bar}]\n {legend}"


def memory_table(memory: ProcessMemory, container: ContainerMemory | None = None) -> str:
    if not isinstance(memory, JobManagerMemory):
        raise TypeError(f"no table for {type(memory).__name__}")
    return _jobmanager_table(memory, container)


def _jobmanager_table(memory: JobManagerMemory, container: ContainerMemory | None) -> str:
    rows = [
        ("Total Process Memory:", memory.total_process, 0),
        ("Total Flink Memory:", memory.total_flink, 2),
        ("JVM Heap:", memory.heap, 4),
        ("Off-heap:", memory.off_heap, 4),
        ("JVM Metaspace:", memory.metaspace, 2),
        ("JVM Overhead:", memory.overhead, 2),
    ]
    lines = [f"JobManager memory, Flink {memory.version}, {memory.mode.value} mode"]
    for label, size, indent in rows:
        lines.append(f"  {' ' * indent}{label:<{24 - indent}}{format_size(size)}")
    lines.append("")
    lines.append(memory_bar(memory))
    lines.append("")
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
