"""A CPU-time deadline that only a hang or a super-linear blow-up can miss, never a slow machine.

Tests never hold code to a timing figure: the inputs they bound are made large enough (megabytes, or
an alias bomb of 9^9 nodes) that a quadratic or exponential path would take hours, and this deadline
is two orders of magnitude above what the linear path takes anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["HANG_DEADLINE", "cpu_deadline"]

# Seconds of CPU time (the process's, so a loaded machine does not stretch it).
HANG_DEADLINE = 60.0


@contextmanager
def cpu_deadline(what: str, seconds: float = HANG_DEADLINE) -> Iterator[None]:
    """Fails when the block spends more than ``seconds`` of CPU time (checked once it returns)."""
    started = time.process_time()
    try:
        yield
    finally:
        spent = time.process_time() - started
        assert spent < seconds, f"{what} spent {spent:.1f} s of CPU: a hang or a super-linear path"
