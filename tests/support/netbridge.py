"""A byte pump between a TCP port and a Unix socket, to reach one TCP service from a network namespace.

A process in a fresh network namespace (``unshare --net``) sees only its own loopback. To let it
reach exactly one service of the host, such as the local kube-apiserver, run two pumps:

    python -m tests.support.netbridge unix-to-tcp SOCKET HOST PORT   # on the host
    python -m tests.support.netbridge tcp-to-unix PORT SOCKET        # inside the namespace

The second listens on 127.0.0.1:PORT inside the namespace; every connection is carried over the
Unix socket file (reachable from both namespaces) to HOST:PORT on the host. Nothing else leaves
the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["main"]

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


def _handler(connect: Connect) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await connect()
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))
        for stream in (writer, upstream_writer):
            stream.close()

    return handle


def _loopback_up() -> None:
    """A new network namespace starts with `lo` down; bring it up (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    layout = "16sH14x"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags: int = struct.unpack(layout, fcntl.ioctl(sock, 0x8913, struct.pack(layout, b"lo", 0)))[1]
        if not flags & 0x1:
            fcntl.ioctl(sock, 0x8914, struct.pack(layout, b"lo", flags | 0x1))


async def _serve(argv: Sequence[str]) -> None:
    mode, *rest = argv
    if mode == "unix-to-tcp":
        socket_path, host, port = rest
        server = await asyncio.start_unix_server(
            _handler(lambda: asyncio.open_connection(host, int(port))), path=socket_path
        )
    elif mode == "tcp-to-unix":
        port, socket_path = rest
        _loopback_up()
        server = await asyncio.start_server(
            _handler(lambda: asyncio.open_unix_connection(socket_path)), host="127.0.0.1", port=int(port)
        )
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
