"""The webhooks' HTTP/1.1 server (runtime/http1.py), spoken to over TLS with raw bytes."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from flinkmem.runtime import http1
from flinkmem.runtime.certs import ensure_self_signed
from flinkmem.runtime.http1 import HttpServer, Reply, json_reply

Handler = Callable[[str, bytes, "str | None"], Awaitable[Reply]]


async def _echo(path: str, body: bytes, refused: str | None) -> Reply:
    return json_reply(200, {"path": path, "length": len(body), "refused": refused})


class _Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names), body."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
        body = await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", "0"))), 30)
        return status, headers, body

    async def closed(self) -> bool:
        """Whether the server closed the connection (within a deadline only a hang misses)."""
        try:
            return await asyncio.wait_for(self.reader.read(1), 30) == b""
        except (ConnectionError, ssl.SSLError):
            return True


Connect = Callable[[], Awaitable[_Client]]


async def _until(condition: Callable[[], bool]) -> None:
    """Waits for `condition`, under a deadline only a hang misses."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


def post(path: str, body: bytes, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@asynccontextmanager
async def _serving(
    tmp_path: Path, handler: Handler = _echo, **options: int
) -> AsyncIterator[tuple[HttpServer, Callable[[], Awaitable[_Client]]]]:
    paths = ensure_self_signed(tmp_path, ["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths.cert, paths.key)
    server = HttpServer(handler, max_body_bytes=64 * 1024, large_body_bytes=16 * 1024, large_at_once=1)
    port = await server.start("127.0.0.1", 0, context)
    client_context = ssl.create_default_context(cafile=str(paths.ca))
    opened: list[asyncio.StreamWriter] = []

    async def connect() -> _Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context, limit=1 << 20)
        opened.append(writer)
        return _Client(reader, writer)

    try:
        yield server, connect
    finally:
        for writer in opened:
            writer.transport.abort()
        await server.stop(5)


def test_requests_on_one_connection_are_answered_in_order_pipelined_or_not(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _serving(tmp_path) as (_, connect):
            client = await connect()
            await client.send(post("/a", b"x" * 10))
            status, headers, body = await client.answer()
            assert status == 200 and headers["content-type"] == "application/json"
            assert json.loads(body) == {"path": "/a", "length": 10, "refused": None}
            # Three at once, in one write, the last one's body split: three answers, in order.
            both = post("/b", b"yy") + post("/c?x=1", b"") + post("/d", b"z" * 300)
            await client.send(both[:-100])
            await asyncio.sleep(0.05)
            await client.send(both[-100:])
            assert [json.loads((await client.answer())[2])["path"] for _ in range(3)] == ["/b", "/c", "/d"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("request_bytes", "status", "says"),
    [
        (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 405, "only POST"),
        (b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411, "Content-Length"),
        (b"POST /a HTTP/1.1\r\nHost: x\r\n\r\n", 411, "Content-Length"),
        (b"POST /a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "Content-Length"),
        (b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "Content-Length"),
        (b"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
        (b"POST /a HTTP/1.1\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\n", 400, "Content-Length"),
        (b"POST /a HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", 413, "larger than 65536"),
        (b"POST /a\r\nContent-Length: 0\r\n\r\n", 400, "request line"),
        (b"POST /a HTTP/2.0\r\nContent-Length: 0\r\n\r\n", 400, "request line"),
        (b"POST /a HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed header"),
        (b"POST /a HTTP/1.1\r\nContent-Length : 0\r\n\r\n", 400, "malformed header"),
        (b"POST /a HTTP/1.1\r\nX: " + b"v" * (17 * 1024), 431, "head is larger"),
    ],
)
def test_unusable_requests_are_answered_4xx_naming_the_problem_and_closed(
    tmp_path: Path, request_bytes: bytes, status: int, says: str
) -> None:
    async def scenario() -> None:
        async with _serving(tmp_path) as (server, connect):
            client = await connect()
            await client.send(request_bytes)
            got, headers, body = await client.answer()
            assert got == status and says in json.loads(body)["error"]
            assert headers["connection"] == "close"
            if status == 405:
                assert headers["allow"] == "POST"
            assert await client.closed()
            # The server goes on answering others.
            other = await connect()
            await other.send(post("/ok", b"{}"))
            assert (await other.answer())[0] == 200
            assert server.turns_held == 0  # no turn was kept

    asyncio.run(scenario())


def test_a_body_too_large_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _serving(tmp_path) as (_, connect):
            client = await connect()
            await client.send(b"POST /a HTTP/1.1\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
            status, _, body = await client.answer()
            assert status == 413 and "larger than" in json.loads(body)["error"]

    asyncio.run(scenario())


def test_expect_100_continue_gets_the_interim_answer_then_the_real_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _serving(tmp_path) as (_, connect):
            client = await connect()
            await client.send(b"POST /a HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            assert await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), 30) == b"HTTP/1.1 100 Continue\r\n\r\n"
            await client.send(b"abc")
            status, _, body = await client.answer()
            assert status == 200 and json.loads(body)["length"] == 3

    asyncio.run(scenario())


def test_http_1_0_and_connection_close_end_the_connection_after_the_answer(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _serving(tmp_path) as (_, connect):
            for request in (
                b"POST /a HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
                post("/a", b"", "Connection: close"),
            ):
                client = await connect()
                await client.send(request)
                status, headers, _ = await client.answer()
                assert status == 200 and headers["connection"] == "close"
                assert await client.closed()
            kept = await connect()
            await kept.send(b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
            assert (await kept.answer())[0] == 200
            await kept.send(post("/b", b""))
            assert (await kept.answer())[0] == 200

    asyncio.run(scenario())


def test_a_failing_handler_is_answered_500_and_the_connection_serves_on(tmp_path: Path) -> None:
    async def boom(path: str, body: bytes, refused: str | None) -> Reply:
        if path == "/boom":
            raise RuntimeError("bug")
        return await _echo(path, body, refused)

    async def scenario() -> None:
        async with _serving(tmp_path, boom) as (_, connect):
            client = await connect()
            await client.send(post("/boom", b""))
            status, _, body = await client.answer()
            assert status == 500 and "internal error" in json.loads(body)["error"]
            await client.send(post("/fine", b""))
            assert (await client.answer())[0] == 200

    asyncio.run(scenario())


def test_slow_and_idle_clients_are_disconnected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "REQUEST_SECONDS", 0.3)
    monkeypatch.setattr(http1, "IDLE_SECONDS", 0.6)
    monkeypatch.setattr(http1, "SWEEP_SECONDS", 0.1)

    async def scenario() -> None:
        async with _serving(tmp_path) as (_, connect):
            half_head, half_body, idle, busy = [await connect() for _ in range(4)]
            await half_head.send(b"POST /a HTTP/1.1\r\nContent-Len")
            await half_body.send(b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345")
            await busy.send(post("/a", b""))
            assert (await busy.answer())[0] == 200
            assert await half_head.closed() and await half_body.closed() and await idle.closed()
            assert await busy.closed()  # idle after its answer

    asyncio.run(scenario())


def test_a_client_that_never_reads_its_answers_stops_being_read_and_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http1, "SWEEP_SECONDS", 0.1)
    monkeypatch.setattr(http1, "REQUEST_SECONDS", http1.REQUEST_SECONDS)  # restored after the test

    async def wordy(path: str, body: bytes, refused: str | None) -> Reply:
        return Reply(200, b'"' + b"a" * 16 * 1024 + b'"')  # fills the client's unread window sooner

    async def scenario() -> None:
        async with _serving(tmp_path, wordy) as (server, connect):
            client = await connect()
            one = post("/a", b"x" * 1000)
            sent = 0
            # Send until the socket stops taking more: the server has stopped reading.
            async with asyncio.timeout(60):
                while True:
                    client.writer.write(one * 64)
                    try:
                        await asyncio.wait_for(client.writer.drain(), 1.0)
                    except TimeoutError:
                        break
                    sent += 64
            (connection,) = server.connections
            assert sent < 20_000, "the server kept reading"
            assert len(connection.buffer) <= http1.READ_AHEAD_BYTES + 256 * 1024
            # Nor is it waited for: once it has stopped reading for REQUEST_SECONDS, it is cut.
            http1.REQUEST_SECONDS = 0.3
            connection.pause_writing()  # sets its deadline again, now by the shortened time
            await _until(lambda: not server.connections)

    asyncio.run(scenario())


def test_large_bodies_take_turns_and_a_lost_connection_gives_its_turn_back(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def held(path: str, body: bytes, refused: str | None) -> Reply:
        if len(body) > 16 * 1024:
            await release.wait()
        return await _echo(path, body, refused)

    large = post("/large", b"L" * (20 * 1024))

    async def scenario() -> None:
        async with _serving(tmp_path, held) as (server, connect):
            first, second, small = await connect(), await connect(), await connect()
            await first.send(large)
            await _until(lambda: server.answering >= 1)
            await second.send(large)
            await small.send(post("/small", b"s"))
            assert (await small.answer())[0] == 200  # an ordinary body never waits for a turn
            await asyncio.sleep(0.2)
            assert server.answering == 1  # the second large body waits, unread
            second.writer.transport.abort()  # gives up while waiting
            release.set()
            assert (await first.answer())[0] == 200
            # A third sends its head and half its body, takes the one turn, and goes away.
            third = await connect()
            await third.send(large[: len(large) // 2])
            await _until(lambda: server.turns_held == 1)
            third.writer.transport.abort()
            await _until(lambda: server.turns_held == 0)
            fourth = await connect()
            await fourth.send(large)
            assert (await fourth.answer())[0] == 200

    asyncio.run(scenario())


def test_the_client_certificate_check_runs_once_per_connection(tmp_path: Path) -> None:
    seen: list[object] = []

    def check(peer: object) -> str | None:
        seen.append(peer)
        return "not the API server"

    async def scenario() -> None:
        async with _serving(tmp_path) as (server, connect):
            server.peer_check = check
            client = await connect()
            for _ in range(3):
                await client.send(post("/a", b""))
                assert json.loads((await client.answer())[2])["refused"] == "not the API server"
            assert len(seen) == 1

    asyncio.run(scenario())


def test_a_large_body_gets_its_100_continue_once_it_has_its_turn(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _serving(tmp_path) as (_, connect):
            client = await connect()
            await client.send(b"POST /a HTTP/1.1\r\nContent-Length: 20000\r\nExpect: 100-continue\r\n\r\n")
            assert await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), 30) == b"HTTP/1.1 100 Continue\r\n\r\n"
            await client.send(b"b" * 20000)
            status, _, body = await client.answer()
            assert status == 200 and json.loads(body)["length"] == 20000

    asyncio.run(scenario())


def test_large_bodies_waiting_are_bounded_and_refused_clients_never_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http1, "MAX_WAITING_TURNS", 1)
    release = asyncio.Event()

    async def held(path: str, body: bytes, refused: str | None) -> Reply:
        if path == "/hold":
            await release.wait()
        return await _echo(path, body, refused)

    large = b"L" * (20 * 1024)

    async def scenario() -> None:
        async with _serving(tmp_path, held) as (server, connect):
            holder, waiter, turned_away = await connect(), await connect(), await connect()
            await holder.send(post("/hold", large))
            await _until(lambda: server.answering >= 1)
            await waiter.send(post("/wait", large))
            await _until(lambda: server.waiting_turns >= 1)
            await turned_away.send(post("/more", large))
            status, _, body = await turned_away.answer()
            assert status == 503 and "retry" in json.loads(body)["error"]
            # A client whose certificate is refused is answered at once, whatever its body's size.
            server.peer_check = lambda _: "not the API server"
            refused = await connect()
            await refused.send(post("/large", large))
            status, _, body = await refused.answer()
            assert status == 200 and json.loads(body)["refused"] == "not the API server"
            release.set()
            assert (await holder.answer())[0] == 200 and (await waiter.answer())[0] == 200
            assert server.waiting_turns == 0 and server.turns_held == 0

    asyncio.run(scenario())


def test_stopping_cancels_an_answer_whose_client_went_away(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def forever(path: str, body: bytes, refused: str | None) -> Reply:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def scenario() -> None:
        async with _serving(tmp_path, forever) as (server, connect):
            client = await connect()
            await client.send(post("/a", b""))
            await asyncio.wait_for(started.wait(), 30)
            client.writer.transport.abort()
            await _until(lambda: not server.connections)
            await server.stop(0.1)
            assert server.answering == 0 and not server.tasks

    asyncio.run(scenario())


def test_a_client_that_half_closes_while_not_being_read_leaves_nothing_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncio's TLS transport, told of the client's end while reading is paused, finishes its close
    only once reading resumes; the server resumes it, and cuts what still hangs."""
    monkeypatch.setattr(http1, "REQUEST_SECONDS", 1.0)
    monkeypatch.setattr(http1, "SWEEP_SECONDS", 0.1)

    async def slowish(path: str, body: bytes, refused: str | None) -> Reply:
        await asyncio.sleep(0.3)
        return await _echo(path, body, refused)

    async def scenario() -> None:
        async with _serving(tmp_path, slowish) as (server, connect):
            for _ in range(5):
                client = await connect()
                await client.send(post("/a", b"{}"))
                await asyncio.sleep(0.05)  # being answered
                await client.send(b"x" * (100 * 1024))  # more than is read ahead: reading pauses
                await asyncio.sleep(0.05)
                client.writer.transport.abort()
            await _until(lambda: not server.connections)

    asyncio.run(scenario())
