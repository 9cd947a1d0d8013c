"""Human-readable views of a resolved JobManager: the memory bar and the breakdown table."""

from __future__ import annotations

import pytest

from flinkmem.cli.render import memory_bar, memory_table
from flinkmem.decisions.container import ContainerMemory
from flinkmem.engine import DeploymentMode, FlinkVersion, JobManagerMemory, Notice

MIB = 1 << 20
GIB = 1 << 30
V2 = FlinkVersion(2, 3)


def memory(
    heap: int = GIB,
    off_heap: int = 128 * MIB,
    metaspace: int = 256 * MIB,
    overhead: int = 192 * MIB,
    notices: tuple[Notice, ...] = (),
    version: FlinkVersion = V2,
    mode: DeploymentMode = DeploymentMode.NATIVE,
) -> JobManagerMemory:
    return JobManagerMemory(
        version=version,
        mode=mode,
        heap=heap,
        off_heap=off_heap,
        metaspace=metaspace,
        overhead=overhead,
        total_flink=heap + off_heap,
        total_process=heap + off_heap + metaspace + overhead,
        direct_memory_limit_enabled=False,
        notices=notices,
    )


def bar_cells(bar: str) -> str:
    first_line = bar.split("\n")[0]
    assert first_line.startswith("[") and first_line.endswith("]")
    return first_line[1:-1]


def test_bar_segments_are_proportional() -> None:
    # 1600m: heap 1024/1600 of 60 cells = 38.4, off-heap 4.8, metaspace 9.6, overhead 7.2.
    cells = bar_cells(memory_bar(memory()))
    assert cells == "█" * 38 + "▓" * 5 + "▒" * 10 + "░" * 7


def test_bar_has_a_legend() -> None:
    legend = memory_bar(memory()).split("\n")[1]
    for name in ("JVM heap", "off-heap", "JVM metaspace", "JVM overhead"):
        assert name in legend


@pytest.mark.parametrize("width", [4, 10, 37, 60, 200])
def test_bar_has_the_requested_width(width: int) -> None:
    assert len(bar_cells(memory_bar(memory(), width=width))) == width


def test_tiny_components_stay_visible() -> None:
    cells = bar_cells(memory_bar(memory(heap=100 * 1024 * GIB, off_heap=1, metaspace=1, overhead=1)))
    assert len(cells) == 60
    assert cells.count("▓") == 1
    assert cells.count("▒") == 1
    assert cells.count("░") == 1
    assert cells.count("█") == 57


def test_empty_components_take_no_cells() -> None:
    cells = bar_cells(memory_bar(memory(heap=0, off_heap=0, metaspace=0, overhead=GIB)))
    assert cells == "░" * 60


def test_all_zero_bar_is_blank() -> None:
    assert bar_cells(memory_bar(memory(heap=0, off_heap=0, metaspace=0, overhead=0))) == " " * 60


def test_table_rows_and_flags() -> None:
    table = memory_table(memory())
    lines = table.split("\n")
    assert lines[0] == "JobManager memory, Flink 2.3, native mode"
    rows = [
        ("  Total Process Memory:", "1.56 GiB (1677721600 bytes)"),
        ("    Total Flink Memory:", "1.13 GiB (1207959552 bytes)"),
        ("      JVM Heap:", "1 GiB"),
        ("      Off-heap:", "128 MiB"),
        ("    JVM Metaspace:", "256 MiB"),
        ("    JVM Overhead:", "192 MiB"),
    ]
    for line, (label, value) in zip(lines[1:7], rows, strict=True):
        # labels indented by level, values all starting in one column
        assert line[:26].rstrip() == label
        assert line[26:] == value
    assert "JVM flags:        -Xmx1073741824 -Xms1073741824 -XX:MaxMetaspaceSize=268435456" in lines
    assert any(line.startswith("Dynamic configs:  -D jobmanager.memory.off-heap.size=134217728b") for line in lines)
    assert not any(line.startswith("Container memory:") for line in lines)


def test_table_with_container_and_notices() -> None:
    notices = (
        Notice("heap-below-minimum", "heap is small"),
        Notice("overhead-raised", "overhead raised to its min", "info"),
    )
    container = ContainerMemory(
        limit_factor=1.0, flink_request_mib=2506, flink_limit_mib=2506, request_mib=2507, limit_mib=2507
    )
    table = memory_table(
        memory(notices=notices, mode=DeploymentMode.STANDALONE, version=FlinkVersion(1, 20)), container
    )
    lines = table.split("\n")
    assert lines[0] == "JobManager memory, Flink 1.20, standalone mode"
    assert "Container memory: request 2507Mi, limit 2507Mi (Flink itself would set 2506Mi / 2506Mi)" in lines
    assert lines[-2:] == ["Warning: heap is small", "Note: overhead raised to its min"]


def test_table_contains_the_bar() -> None:
    m = memory()
    assert memory_bar(m) in memory_table(m)
