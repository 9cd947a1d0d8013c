"""Kubernetes Events about FlinkDeployments and pods, posted without holding anyone up.

An admission answer or a reconcile never waits for its Event: each is posted in a background task,
and failures are logged by the poster (`Cluster.post_event`), never raised.

The webhook process posts an Event for most FlinkDeployment creates. Posted at once, those writes
land on the API server during the very burst of creates that caused them, and a burst of 100 creates
a second then queued behind them on the benchmark machine. So a poster may be paced by a token
bucket (the webhook process shares the controller's `--controller-qps` and `--controller-burst`).
Paced Events wait in one line per namespace, served in turn, so that a tenant creating hundreds of
objects delays another namespace's Event by one turn, not by its whole backlog. At most
`max_pending` Events wait in all and `max_per_namespace` per namespace: beyond that an Event is
dropped and counted, as Kubernetes' own event recorders drop theirs when their queue is full. An Event
only informs; the annotation it accompanies is the record.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flinkmem.conventions import EVENT_MESSAGE_LIMIT
from flinkmem.decisions.redaction import redact
from flinkmem.runtime.ratelimit import TokenBucket

__all__ = ["MAX_PENDING", "MAX_PER_NAMESPACE", "EventPoster", "EventSink"]

logger = logging.getLogger("flinkmem.events")

# Events waiting for their turn or their answer, at most, and of those at most MAX_PER_NAMESPACE from
# one namespace, so that one tenant's flood cannot crowd the others out. One namespace may still hold
# a whole burst of 1,000 creates (paced at 10 a second while they come at 100, nearly all of theirs
# wait). Each holds at most about 1.5 KiB (a reference and a message cut to EVENT_MESSAGE_LIMIT).
MAX_PENDING = 5000
MAX_PER_NAMESPACE = 1000


class EventSink(Protocol):
    """Where Events go (the API server, through `Cluster.post_event`)."""

    async def post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class _Event:
    target: Mapping[str, Any]
    type_: str
    reason: str
    message: str


# The longest name the API server accepts; a reference is cut to it, since a pod's owner references
# (which name an Event's object) reach the webhook before the API server has checked them.
_NAME_LIMIT = 253


def _text(value: Any) -> str | None:
    return value[:_NAME_LIMIT] if isinstance(value, str) else None


def _reference(target: Mapping[str, Any]) -> dict[str, Any]:
    """What an Event needs of its object, so that a waiting Event does not keep a whole object alive."""
    meta = target.get("metadata") or {}
    return {
        "apiVersion": _text(target.get("apiVersion")),
        "kind": _text(target.get("kind")),
        "metadata": {key: _text(meta.get(key)) for key in ("name", "namespace", "uid")},
    }


class EventPoster:
    def __init__(
        self,
        sink: EventSink,
        bucket: TokenBucket | None = None,
        max_pending: int = MAX_PENDING,
        max_per_namespace: int = MAX_PER_NAMESPACE,
    ) -> None:
        self.sink = sink
        self.bucket = bucket
        self.max_pending = max_pending
        self.max_per_namespace = max_per_namespace
        self.dropped = 0
        # Paced Events waiting for a token, one line per namespace; the dict's order is the turn order.
        self._lines: dict[str, deque[_Event]] = {}
        self._waiting = 0
        self._turns: asyncio.Task[None] | None = None  # once done (or cancelled), the next post starts another
        self._posting: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Events waiting for their turn or for the API server's answer."""
        return self._waiting + len(self._posting)

    def post(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Schedules the Event (its message redacted) and returns at once; needs a running event loop."""
        # Cut as the Event will be, so that a waiting Event holds no more than it posts.
        event = _Event(_reference(target), type_, reason, redact(message)[:EVENT_MESSAGE_LIMIT])
        namespace = str(event.target["metadata"].get("namespace") or "")
        line = self._lines.get(namespace)
        held = len(line) if line is not None else 0
        if held >= self.max_per_namespace or (self.pending >= self.max_pending and not self._make_room(held)):
            self._drop(namespace)
            return
        if self.bucket is None:
            self._send(event)
            return
        if line is None:
            line = self._lines[namespace] = deque()
        line.append(event)
        self._waiting += 1
        if self._turns is None or self._turns.done():
            self._turns = asyncio.create_task(self._take_turns(self.bucket))

    def _make_room(self, held: int) -> bool:
        """When all is full: drops the newest Event of the longest line, if that line is longer than the
        newcomer's would be, so that a few flooding namespaces cannot keep the others' first Events out."""
        longest = max(self._lines, key=lambda namespace: len(self._lines[namespace]), default=None)
        if longest is None or len(self._lines[longest]) <= held + 1:
            return False
        self._lines[longest].pop()
        self._waiting -= 1
        self._drop(longest)
        return True

    def _drop(self, namespace: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 100 == 0:
            logger.warning(
                "%d Events dropped so far (%d waiting in all, at most %d from one namespace; the last from %r)",
                self.dropped,
                self.pending,
                self.max_per_namespace,
                namespace,
            )

    def _send(self, event: _Event) -> None:
        task = asyncio.create_task(self.sink.post_event(event.target, event.type_, event.reason, event.message))
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _take_turns(self, bucket: TokenBucket) -> None:
        """Posts the waiting Events at the bucket's pace, one namespace's at a time in turn."""
        while self._lines:
            await bucket.acquire()
            namespace = next(iter(self._lines))
            line = self._lines.pop(namespace)
            event = line.popleft()
            self._waiting -= 1
            if line:
                self._lines[namespace] = line  # to the back of the turn order
            self._send(event)

    async def drain(self, timeout: float | None = None) -> None:
        """Waits for the Events already scheduled (on shutdown, and in tests); after `timeout` seconds
        the ones still waiting for their turn or their answer are given up, and counted as dropped."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            turns = self._turns
            tasks = [task for task in (*self._posting, turns) if task is not None and not task.done()]
            if not tasks:
                return
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                # Counted after the cancellations took effect: what was posted meanwhile is given up too.
                given_up = self._waiting + sum(1 for task in tasks if task is not turns and task.cancelled())
                self._lines.clear()
                self._waiting = 0
                self.dropped += given_up
                logger.warning("stopping: %d Events not posted", given_up)
                continue  # anything posted unpaced meanwhile is cancelled on the next pass
            await asyncio.wait(tasks, timeout=left, return_when=asyncio.FIRST_COMPLETED)
