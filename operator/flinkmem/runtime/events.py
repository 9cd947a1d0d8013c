"""Kubernetes Events about FlinkDeployments and pods, posted without holding anyone up.

An admission answer or a reconcile never waits for its Event: each is posted in a background task,
and failures are logged by the poster (`Cluster.post_event`), never raised.

The webhook process posts an Event for most FlinkDeployment creates. Posted at once, those writes
land on the API server during the very burst of creates that caused them, and a burst of 100 creates
a second then queued behind them on the benchmark machine. So a poster may be paced by a token
bucket (the webhook process shares the controller's `--controller-qps` and `--controller-burst`), and
holds at most `max_pending` Events: beyond that an Event is dropped and counted, as Kubernetes' own
event recorders drop theirs when their queue is full. An Event only informs; the annotation it
accompanies is the record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from flinkmem.decisions.redaction import redact
from flinkmem.runtime.ratelimit import TokenBucket

__all__ = ["MAX_PENDING", "EventPoster", "EventSink"]

logger = logging.getLogger("flinkmem.events")

# Events waiting for their turn or their answer, at most; each holds a few hundred bytes.
MAX_PENDING = 1000


class EventSink(Protocol):
    """Where Events go (the API server, through `Cluster.post_event`)."""

    async def post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None: ...


def _reference(target: Mapping[str, Any]) -> dict[str, Any]:
    """What an Event needs of its object, so that a waiting Event does not keep a whole object alive."""
    meta = target.get("metadata") or {}
    return {
        "apiVersion": target.get("apiVersion"),
        "kind": target.get("kind"),
        "metadata": {key: meta.get(key) for key in ("name", "namespace", "uid")},
    }


class EventPoster:
    def __init__(self, sink: EventSink, bucket: TokenBucket | None = None, max_pending: int = MAX_PENDING) -> None:
        self.sink = sink
        self.bucket = bucket
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: set[asyncio.Task[None]] = set()

    def post(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Schedules the Event (its message redacted) and returns at once; needs a running event loop."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                logger.warning("%d Events dropped so far: %d are waiting to be posted", self.dropped, self.max_pending)
            return
        task = asyncio.create_task(self._post(_reference(target), type_, reason, redact(message)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        if self.bucket is not None:
            await self.bucket.acquire()
        await self.sink.post_event(target, type_, reason, message)

    async def drain(self, timeout: float | None = None) -> None:
        """Waits for the Events already scheduled (on shutdown, and in tests); after `timeout` seconds
        the ones still waiting for their turn are given up, and counted as dropped."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._pending:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                given_up = list(self._pending)
                for task in given_up:
                    task.cancel()
                await asyncio.gather(*given_up, return_exceptions=True)
                self.dropped += len(given_up)
                logger.warning("stopping: %d Events not posted", len(given_up))
                return
            await asyncio.wait(list(self._pending), timeout=left)
