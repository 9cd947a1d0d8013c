"""Refusals told once, then counted: a log line (and an Event) per refusal costs more than the decision.

A GitOps loop retrying a refused manifest sends the same review again and again. The first refusal
of each (namespace, name, rule) is logged at INFO with its full message; repeats within the interval
are only counted, and the next line about that key (the next refusal after the interval, or the
periodic `flush`) says how many there were. `flinkmem_admission_requests_total` counts every one.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RefusalLog"]

Key = tuple[str, str, str]  # namespace, name, rule


@dataclass
class _Seen:
    told_at: float
    repeats: int = 0


class RefusalLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._seen: OrderedDict[Key, _Seen] = OrderedDict()

    def refused(self, key: Key, message: str) -> bool:
        """Records a refusal; True when it was told (logged), False when it was only counted."""
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.told_at < self.interval:
            seen.repeats += 1
            return False
        repeats = seen.repeats if seen is not None else 0
        suffix = f" ({repeats} identical refusals in the last {self.interval:.0f} s were counted, not logged)"
        self.logger.info("%s%s", message, suffix if repeats else "")
        self._seen[key] = _Seen(now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return True

    def flush(self) -> None:
        """Tells the repeats counted since each key's last line, for keys whose interval is over."""
        now = self.clock()
        for key, seen in list(self._seen.items()):
            if now - seen.told_at < self.interval:
                continue
            if seen.repeats:
                namespace, name, rule = key
                self.logger.info(
                    "refused FlinkDeployment %s/%s again %d times (%s) in the last %.0f s",
                    namespace,
                    name,
                    seen.repeats,
                    rule,
                    now - seen.told_at,
                )
            del self._seen[key]
