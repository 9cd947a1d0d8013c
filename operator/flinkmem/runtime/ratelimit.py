"""Client-side throttling of the controller's writes, as every Kubernetes controller has.

The controller's writes (the resolved-memory annotation, Events, evictions) are informational and
can wait; admission requests cannot. Under a burst of creations, unthrottled controller writes land
on the same API server as the burst itself and slow every create down, so they are spread out here
at a steady rate, with a burst allowance for the ordinary trickle of changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """At most `rate` acquisitions per second on average, and `burst` at once; rate <= 0: unlimited.

    Each `acquire` reserves its token at once (the balance may go negative) and then sleeps until
    the token is due, so callers are served in the order they asked.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 and rate > 0:
            raise ValueError("a throttled bucket needs a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def reserve(self) -> float:
        """Takes one token; returns how many seconds the caller must wait before using it."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1
        return -self._tokens / self.rate if self._tokens < 0 else 0.0

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
