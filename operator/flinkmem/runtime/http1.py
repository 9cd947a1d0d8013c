"""A small HTTP/1.1 server over TLS for the admission webhooks: POSTs with a known length, nothing else.

The API server's webhook client sends one kind of request (POST, Content-Length, JSON) over kept-alive
connections. aiohttp's server, which served them before, spent about 0.4 ms of CPU per request on
machinery these requests never use (routing, multidicts, stream readers, a payload writer): as much as
the review itself (docs/adr/0009-own-http-server.md). This server parses the request head once, reads
the body into one buffer and hands it to one coroutine per request.

What it bounds, for callers that are not the API server:
- the head (request line and headers) to `MAX_HEAD_BYTES`, answered 431;
- the body to `max_body_bytes`, answered 413 before it is read;
- a request without Content-Length (chunked) is answered 411: the API server always sends the length;
- a request must arrive whole within `REQUEST_SECONDS` of its first byte, a kept-alive connection may
  idle `IDLE_SECONDS`, and the TLS handshake may take `HANDSHAKE_SECONDS`;
- bodies over `large_body_bytes` wait, unread in the socket, for one of `large_at_once` turns (at
  most `MAX_WAITING_TURNS` wait, 503 beyond), and must then arrive within `TURN_SECONDS`; a client
  whose certificate is refused never waits for one;
- one request at a time per connection; a client that pipelines more or stops reading its answers
  stops being read, and one that has not read its answers for `REQUEST_SECONDS` is cut.
Anything malformed is answered 4xx with a JSON `error` naming the problem, and the connection closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

__all__ = ["HttpServer", "Reply", "json_reply"]

logger = logging.getLogger("flinkmem.http")

MAX_HEAD_BYTES = 16 * 1024
REQUEST_SECONDS = 30.0
IDLE_SECONDS = 75.0  # aiohttp's keep-alive default, which the webhooks had before
HANDSHAKE_SECONDS = 10.0
# Once a large body has its turn, it must arrive within this: a client trickling it holds a turn.
TURN_SECONDS = 5.0
# Connections waiting for a large-body turn; more are answered 503 (each holds a socket and a read).
MAX_WAITING_TURNS = 64
# While a request is being answered, at most this much of the next one is read ahead.
READ_AHEAD_BYTES = 64 * 1024
SWEEP_SECONDS = 1.0


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes  # JSON
    headers: bytes = b""  # extra header lines, each ending in CRLF


def json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode())


def _error(status: int, message: str) -> Reply:
    return json_reply(status, {"error": message})


_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}

# (path, body, refused): `refused` says why the client's certificate is not accepted (or None).
Handler = Callable[[str, bytes, "str | None"], Awaitable[Reply]]


class _Head:
    """What the server needs from a request head; `problem` is the error answer when it is unusable."""

    __slots__ = ("close", "continue_", "length", "path", "problem")

    def __init__(self) -> None:
        self.path = ""
        self.length = 0
        self.close = False
        self.continue_ = False
        self.problem: Reply | None = None


def _parse_head(raw: bytes, max_body: int) -> _Head:
    head = _Head()
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        head.problem = _error(400, "the request line is not 'METHOD /path HTTP/1.1'")
        return head
    method, target, version = parts
    head.close = version == "HTTP/1.0"
    lengths: set[str] = set()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip(" \t"):
            head.problem = _error(400, f"malformed header line {line[:80]!r}")
            return head
        name = name.lower()
        value = value.strip(" \t")
        if name == "content-length":
            lengths.add(value)
        elif name == "transfer-encoding":
            head.problem = _error(411, "send the body with a Content-Length (flinkmem does not read chunked bodies)")
            return head
        elif name == "connection":
            tokens = {token.strip().lower() for token in value.split(",")}
            if "close" in tokens:
                head.close = True
            elif "keep-alive" in tokens:
                head.close = False
        elif name == "expect" and value.lower() == "100-continue":
            head.continue_ = version == "HTTP/1.1"
    if method != "POST":
        head.problem = Reply(405, b'{"error": "only POST is served"}', b"Allow: POST\r\n")
        return head
    head.path = target.partition("?")[0]
    if not lengths:
        head.problem = _error(411, "a Content-Length is required")
        return head
    value = lengths.pop()
    if lengths or not (value.isascii() and value.isdigit()) or len(value) > 18:
        head.problem = _error(400, "Content-Length is not one whole number")
        return head
    head.length = int(value)
    if head.length > max_body:
        head.problem = _error(413, f"the body is larger than {max_body} bytes")
    return head


class _Connection(asyncio.Protocol):
    """One client connection: requests one at a time, each answered by `server.handler` in a task."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: _Head | None = None  # of the request whose body is being read
        self.answering: asyncio.Task[None] | None = None
        self.waiting_turn: asyncio.Task[None] | None = None
        self.holds_turn = False
        self.refused: str | None = None
        self.deadline = 0.0  # when the server's sweep closes this connection (0: never)
        self.started = False  # whether the request being read has begun (its deadline is set)
        self.reading = True
        self.writing = True

    # --- asyncio's side ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.server.stopping:  # a handshake that finished after the port closed
            transport.abort()
            return
        self.server.connections.add(self)
        if self.server.peer_check is not None:
            self.refused = self.server.peer_check(transport.get_extra_info("peercert"))
        self.deadline = time.monotonic() + IDLE_SECONDS

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.waiting_turn is not None:
            self.waiting_turn.cancel()
        if self.answering is None:
            self._give_turn_back()  # taken for a body that will not arrive now
        self.buffer.clear()

    def pause_writing(self) -> None:
        self.writing = False
        # The client must read its answers: one that stops is not waited for.
        self.deadline = time.monotonic() + REQUEST_SECONDS

    def resume_writing(self) -> None:
        self.writing = True
        self._advance()

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # answered and closing: nothing more is read
        self.buffer += data
        if self.answering is not None or self.waiting_turn is not None or not self.writing:
            if len(self.buffer) > READ_AHEAD_BYTES + (self.head.length if self.head is not None else 0):
                self._pause()
            return
        self._advance()

    # --- requests ------------------------------------------------------------------------------

    def _pause(self) -> None:
        if self.reading and self.transport is not None:
            self.transport.pause_reading()
            self.reading = False

    def _resume(self) -> None:
        if not self.reading and self.transport is not None and not self.transport.is_closing():
            self.reading = True
            self.transport.resume_reading()

    def _advance(self) -> None:
        """Reads as far as the buffer allows; starts answering a request once it is whole."""
        transport = self.transport
        if (
            transport is None
            or transport.is_closing()
            or self.answering is not None
            or self.waiting_turn is not None
            or not self.writing
        ):
            return
        head = self.head
        if head is None:
            buffer = self.buffer
            if not buffer:
                self.deadline = time.monotonic() + IDLE_SECONDS
                self._resume()
                return
            end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    self._finish(_error(431, f"the request head is larger than {MAX_HEAD_BYTES} bytes"), True)
                else:
                    self._begin()
                    self._resume()
                return
            head = _parse_head(bytes(buffer[:end]), self.server.max_body_bytes)
            del buffer[: end + 4]
            if head.problem is not None:
                self._finish(head.problem, True)
                return
            self.head = head
            self._begin()
            # A refused client is answered 403 without its body being read: it never needs a turn.
            if head.length > self.server.large_body_bytes and not self.holds_turn and self.refused is None:
                if self.server.waiting_turns >= MAX_WAITING_TURNS:
                    self._finish(_error(503, "too many large requests are waiting; retry later"), True)
                    return
                self._pause()
                self.deadline = 0.0  # the wait is flinkmem's, not the client's
                self.server.waiting_turns += 1
                self.waiting_turn = asyncio.get_running_loop().create_task(self._take_turn())
                return
        if head.continue_:
            head.continue_ = False
            if len(self.buffer) < head.length:
                transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        length = head.length
        if len(self.buffer) < length:
            self._resume()
            return
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        self.head = None
        self.started = False
        self.deadline = 0.0
        task = self.answering = asyncio.get_running_loop().create_task(self._answer(head, body))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    def _begin(self) -> None:
        """The request being read has begun: it must be whole within REQUEST_SECONDS of now."""
        if not self.started:
            self.started = True
            self.deadline = time.monotonic() + REQUEST_SECONDS

    async def _take_turn(self) -> None:
        try:
            await self.server.large_turns.acquire()
        finally:
            self.server.waiting_turns -= 1
        self.holds_turn = True
        self.server.turns_held += 1
        self.waiting_turn = None
        if self.transport is None or self.transport.is_closing():
            self._give_turn_back()
            return
        self.deadline = time.monotonic() + TURN_SECONDS
        self._advance()

    def _give_turn_back(self) -> None:
        if self.holds_turn:
            self.holds_turn = False
            self.server.turns_held -= 1
            self.server.large_turns.release()

    async def _answer(self, head: _Head, body: bytes) -> None:
        server = self.server
        try:
            reply = await server.handler(head.path, body, self.refused)
        except Exception:
            logger.exception("answering a request to %s failed", head.path[:100])
            reply = _error(500, "internal error (see flinkmem's log)")
        finally:
            self._give_turn_back()
            self.answering = None
        self._finish(reply, head.close or server.stopping)
        self._advance()

    def _finish(self, reply: Reply, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n%s"
            % (
                reply.status,
                _REASONS.get(reply.status, b"Unknown"),
                len(reply.body),
                reply.headers,
                b"Connection: close\r\n" if close else b"",
                reply.body,
            )
        )
        if close:
            self.head = None
            self._resume()  # asyncio's TLS transport finishes a close only while it reads
            transport.close()
            # A close that cannot finish (a client gone quiet mid-shutdown) is cut by the sweep.
            self.deadline = time.monotonic() + REQUEST_SECONDS

    def idle(self) -> bool:
        return self.answering is None and self.waiting_turn is None and self.head is None and not self.buffer


class HttpServer:
    """Serves `handler` over TLS; `stop()` closes the port and answers the requests in flight first."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_bytes: int,
        large_body_bytes: int,
        large_at_once: int,
        peer_check: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.large_body_bytes = large_body_bytes
        self.large_turns = asyncio.Semaphore(large_at_once)
        self.turns_held = 0
        self.waiting_turns = 0
        self.tasks: set[asyncio.Task[None]] = set()  # answering, whether or not their client is still there
        self.peer_check = peer_check
        self.connections: set[_Connection] = set()
        self.stopping = False
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def answering(self) -> int:
        """Requests being answered, whether or not their client is still there."""
        return len(self.tasks)

    async def start(self, host: str, port: int, context: ssl.SSLContext) -> int:
        """Listens on `host:port` (0: any free port); the port bound."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            host,
            port,
            ssl=context,
            reuse_address=True,
            ssl_handshake_timeout=HANDSHAKE_SECONDS,
        )
        self._sweeper = loop.create_task(self._sweep())
        return int(self._server.sockets[0].getsockname()[1])

    async def _sweep(self) -> None:
        """Closes connections past their deadline: a slow or silent client holds nothing for long."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for connection in list(self.connections):
                if connection.deadline and connection.deadline < now and connection.transport is not None:
                    connection.transport.abort()

    async def stop(self, drain_seconds: float) -> None:
        """Closes the port and the idle connections, answers the requests in flight (at most
        `drain_seconds`), then closes every connection."""
        self.stopping = True
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for connection in list(self.connections):
            if connection.idle() and connection.transport is not None:
                connection.transport.close()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=drain_seconds)
        late = list(self.tasks)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
