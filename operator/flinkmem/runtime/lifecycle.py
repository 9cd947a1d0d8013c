"""Process lifecycle helpers: a child that dies with its parent, start-up objects out of the GC's way, and
memory that goes back once the objects that held it are gone."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "GrowthCollector",
    "collect_garbage_on_growth",
    "die_with_parent",
    "fix_mmap_threshold",
    "freeze_startup_objects",
]

_PR_SET_PDEATHSIG = 1
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 128 * 1024


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL for this process when its parent dies, however it dies (Linux `PR_SET_PDEATHSIG`).

    A container takes all its processes with it; outside one (local runs, tests, a SIGKILL sent to the
    parent alone) an orphan would go on running. With `parent`, exits at once if that process is
    already gone (it died before the request was in place). Safe in a `preexec_fn`.
    """
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def freeze_startup_objects() -> None:
    """Moves everything built so far (modules, kopf, the clients: some 80,000 objects) out of the
    garbage collector's sight. They live as long as the process, yet each full collection walked them
    all, about 15 ms during which no admission request was answered."""
    gc.collect()
    gc.freeze()


def fix_mmap_threshold() -> None:
    """Blocks of 128 KiB and more always come from their own mapping, returned to the system when freed.

    glibc starts there, but raises the threshold each time such a block is freed (up to 32 MiB); from then
    on megabyte-sized blocks (the line of a watch event for a 900 KiB ConfigMap, a 3 MiB review body) come
    from the heap, which freeing rarely shrinks. Without glibc, nothing to do.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


GROWTH_STEP = 8 * 1024 * 1024
SETTLE_STEP = 1024 * 1024
SETTLE_SECONDS = 10.0
GROWTH_CHECK_SECONDS = 1.0


def resident_bytes() -> int | None:
    """The process's resident set from /proc (None where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class GrowthCollector:
    """Runs a full collection once the process has grown: at once by 8 MiB, or by 1 MiB for 10 s.

    kopf's per-event structures (a body, its diff, the handler's arguments) refer to each other, so each
    watch event leaves a cycle only the collector frees. Python collects the oldest generation by the
    count of new objects, and an idle process makes none: after a burst of ConfigMaps of 900 KiB both
    processes kept some twenty of them, 35 MiB, until the next burst. Growth is the signal that matters:
    one read of /proc a second costs nothing, a process that does not grow is never collected, and a
    tenant's objects cannot make collections more frequent than one per 8 MiB of memory they cost.
    """

    resident: Callable[[], int | None] = resident_bytes
    clock: Callable[[], float] = time.monotonic
    collect: Callable[[], object] = gc.collect
    baseline: int = 0
    collected: float = 0.0

    def __post_init__(self) -> None:
        self.baseline = self.resident() or 0
        self.collected = self.clock()

    def check(self) -> bool:
        """One look at the process's size; True if it collected."""
        now = self.resident() or 0
        grown = now - self.baseline
        if grown >= GROWTH_STEP or (grown >= SETTLE_STEP and self.clock() - self.collected >= SETTLE_SECONDS):
            self.collect()
            self.collected = self.clock()
            self.baseline = self.resident() or now
            return True
        if grown < 0:
            self.baseline = now
        return False


def collect_garbage_on_growth() -> threading.Thread | None:
    """A daemon thread running :class:`GrowthCollector` every second (none without /proc)."""
    if resident_bytes() is None:
        return None
    collector = GrowthCollector()

    def watch() -> None:
        while True:
            time.sleep(GROWTH_CHECK_SECONDS)
            collector.check()

    thread = threading.Thread(target=watch, name="flinkmem-gc", daemon=True)
    thread.start()
    return thread
