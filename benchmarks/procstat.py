"""CPU time and memory of process trees, read from /proc (Linux only).

A benchmark samples `cpu_seconds` of a tree before and after a phase; the difference divided by the
requests sent is the CPU each request cost that tree, whatever cores it ran on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

__all__ = ["Memory", "children", "cpu_seconds", "cpu_split", "memory", "peak_rss", "process_tree"]

_TICKS = os.sysconf("SC_CLK_TCK")


class Memory(NamedTuple):
    rss: int  # bytes resident
    pss: int  # bytes, shared pages divided among the processes sharing them


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # exited meanwhile
    # The command name (field 2) may hold spaces and parentheses; everything after its last ")" is fixed.
    return text.rsplit(")", 1)[1].split()


def children(pid: int) -> set[int]:
    """The direct children of `pid`, from every thread's children list."""
    found: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def process_tree(root: int) -> set[int]:
    """`root` and all its descendants that are alive now."""
    tree, pending = set(), [root]
    while pending:
        pid = pending.pop()
        if pid in tree or _stat_fields(pid) is None:
            continue
        tree.add(pid)
        pending.extend(children(pid))
    return tree


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU time the processes have used so far (threads included)."""
    total = 0.0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            # Fields 14 and 15 of /proc/PID/stat (utime, stime); `fields` starts at field 3.
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def cpu_split(pids: Iterable[int]) -> tuple[float, float]:
    """User and system CPU time apart: system time is the kernel's work for the process (socket
    sends and receives, loopback delivery included, epoll), user time its own code."""
    user = system = 0.0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            user += int(fields[11]) / _TICKS
            system += int(fields[12]) / _TICKS
    return user, system


def memory(pids: Iterable[int]) -> Memory:
    """Resident and proportional set sizes, summed over the processes."""
    rss = pss = 0
    for pid in pids:
        values: dict[str, int] = {}
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    values[key] = int(parts[0]) * 1024
        except OSError:
            continue
        rss += values.get("Rss", 0)
        pss += values.get("Pss", 0)
    return Memory(rss, pss)


def peak_rss(pids: Iterable[int]) -> int:
    """The highest resident set size each process has had (VmHWM), summed: what a memory limit must allow."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total
