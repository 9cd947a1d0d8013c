"""Process lifecycle helpers of `flinkmem serve` that need no cluster."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import weakref

from flinkmem.runtime import serve  # noqa: F401  # what `flinkmem serve` has imported when it freezes
from flinkmem.runtime.lifecycle import (
    GROWTH_STEP,
    SETTLE_SECONDS,
    GrowthCollector,
    freeze_startup_objects,
    resident_bytes,
)

MIB = 1024 * 1024


def test_startup_objects_are_frozen_out_of_collections() -> None:
    try:
        freeze_startup_objects()
        # The modules imported so far (flinkmem, kopf, the kubernetes client) are all frozen.
        assert gc.get_freeze_count() > 20_000
    finally:
        gc.unfreeze()


def test_a_child_tied_to_its_parent_dies_with_it() -> None:
    # A parent starts a child that ties itself to it and then reports its pid; the parent is killed.
    child = (
        "import os, time; from flinkmem.runtime.lifecycle import die_with_parent; "
        "die_with_parent(); print(os.getpid(), flush=True); time.sleep(60)"
    )
    relay = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {child!r}]).wait()"
    parent = subprocess.Popen([sys.executable, "-c", relay], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":  # a zombie waiting to be reaped is gone
                    return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the child outlived its parent")


class _Process:
    """A process's size and clock as the growth collector sees them."""

    def __init__(self) -> None:
        self.size = 100 * MIB
        self.time = 0.0
        self.collections = 0
        self.garbage = 0

    def collect(self) -> None:
        self.collections += 1
        self.size -= self.garbage
        self.garbage = 0

    def collector(self) -> GrowthCollector:
        return GrowthCollector(resident=lambda: self.size, clock=lambda: self.time, collect=self.collect)


def test_a_process_that_does_not_grow_is_never_collected() -> None:
    process = _Process()
    collector = process.collector()
    for _ in range(1000):
        process.time += 1
        assert not collector.check()
    process.size -= 5 * MIB  # shrinking lowers the mark growth is measured from
    collector.check()
    process.size += 5 * MIB
    process.time += SETTLE_SECONDS
    assert collector.check()
    assert process.collections == 1


def test_fast_growth_is_collected_at_once_and_at_most_once_per_step() -> None:
    process = _Process()
    collector = process.collector()
    # A flood of large objects: 3 MiB a second, all of it garbage.
    for _ in range(100):
        process.size += 3 * MIB
        process.garbage += 3 * MIB
        process.time += 1
        collector.check()
        assert process.size - 100 * MIB < GROWTH_STEP
    # Each collection once 8 MiB (and less than 8 + 3 MiB) have come since the one before.
    assert 300 * MIB // (GROWTH_STEP + 3 * MIB) <= process.collections <= 300 * MIB // GROWTH_STEP


def test_slow_growth_is_collected_once_it_settles() -> None:
    process = _Process()
    collector = process.collector()
    process.size += 2 * MIB
    process.garbage += 2 * MIB
    process.time += SETTLE_SECONDS - 1
    assert not collector.check()
    process.time += 1
    assert collector.check()
    assert process.size == 100 * MIB
    # Growth that is no garbage (a cache filling) is collected once, not every ten seconds after.
    process.size += 2 * MIB
    for _ in range(10):
        process.time += SETTLE_SECONDS
        collector.check()
    assert process.collections == 2


def test_the_collector_frees_cycles_an_idle_process_would_keep() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    # The process's size as the collector reads it: grown by a step, then back once collected. (The
    # real size is no signal inside a test run: a large block may reuse memory the heap already holds.)
    sizes = iter([100 * MIB, 100 * MIB + GROWTH_STEP, 100 * MIB])
    gc.disable()
    try:
        collector = GrowthCollector(resident=lambda: next(sizes))
        gone = weakref.ref(Node())  # garbage at once, but only the collector can free a cycle
        assert gone() is not None
        assert collector.check()
        assert gone() is None
    finally:
        gc.enable()


def test_the_resident_size_is_read_from_proc() -> None:
    size = resident_bytes()
    assert size is not None
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    assert abs(size - kib * 1024) < 64 * MIB  # read a moment apart
