"""A private network namespace for the HA plane (Linux, root).

The API server refuses loopback addresses in Endpoints and EndpointSlices, so webhook replicas behind
a Service need addresses of their own. :func:`create` makes a new network namespace with ``unshare``
(the system call behind ``unshare -n``), brings its ``lo`` up and adds TEST-NET-1 addresses
(192.0.2.0/24, RFC 5737) to it. Nothing in the namespace has a route out: its only interface is
``lo``, so no packet sent inside it can reach another host or the machine's own network.

Namespaces belong to threads. :meth:`NetNamespace.entered` moves the calling thread into the
namespace; every process it starts and every socket it opens is then inside, and threads it starts
inherit the namespace. Leaving puts the thread back where it was. The namespace disappears by itself
once no process, thread or file descriptor refers to it any more.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["NetNamespace", "NetNamespaceError", "create"]

CLONE_NEWNET = 0x40000000
TEST_NET = ipaddress.ip_network("192.0.2.0/24")

_libc = ctypes.CDLL(None, use_errno=True)


class NetNamespaceError(RuntimeError):
    """The namespace could not be created, configured or entered."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise NetNamespaceError(f"{what} failed: {os.strerror(errno)} (root and Linux are needed)")


def _current() -> int:
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)")


@dataclass(frozen=True)
class NetNamespace:
    """An open handle on a network namespace (``fd``) and the addresses added to its ``lo``."""

    fd: int
    addresses: tuple[str, ...]

    @property
    def path(self) -> str:
        """A path other tools accept, e.g. ``nsenter --net=PATH`` (valid while ``fd`` is open)."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread inside this namespace for the ``with`` block, then back where it was."""
        home = _current()
        try:
            _setns(self.fd)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(home)

    def close(self) -> None:
        os.close(self.fd)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetNamespaceError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def create(addresses: Sequence[str]) -> NetNamespace:
    """A new network namespace whose ``lo`` is up and carries ``addresses`` (each in 192.0.2.0/24).

    The calling thread ends up where it started; close the handle (or let the process end) to let
    the namespace go once nothing runs in it any more.
    """
    for address in addresses:
        if ipaddress.ip_address(address) not in TEST_NET:
            raise NetNamespaceError(f"{address} is not in {TEST_NET}; the plane only uses TEST-NET-1")
    home = _current()
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        fd = _current()
        try:
            _ip("link", "set", "lo", "up")
            for address in addresses:
                _ip("addr", "add", f"{address}/32", "dev", "lo")
        except BaseException:
            os.close(fd)
            raise
        finally:
            _setns(home)
    finally:
        os.close(home)
    return NetNamespace(fd, tuple(addresses))
