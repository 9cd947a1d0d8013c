"""Kubernetes Events about FlinkDeployments and pods, posted without holding anyone up.

An admission answer or a reconcile never waits for its Event: each is posted in a background task,
and failures are logged by the poster (`Cluster.post_event`), never raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from flinkmem.decisions.redaction import redact

__all__ = ["EventPoster", "EventSink"]


class EventSink(Protocol):
    """Where Events go (the API server, through `Cluster.post_event`)."""

    async def post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None: ...


class EventPoster:
    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self._pending: set[asyncio.Task[None]] = set()

    def post(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Schedules the Event (its message redacted) and returns at once; needs a running event loop."""
        task = asyncio.create_task(self.sink.post_event(target, type_, reason, redact(message)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Waits for the Events already scheduled (on shutdown, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
