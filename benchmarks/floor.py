"""The floor under flinkmem's figures: no-op admission webhooks that allow everything and do nothing
else, run as processes and registered under flinkmem's own names and rules.

`noop/` (Go, compiled) is the cheapest webhook we can build; `noop_webhook.py` (Python asyncio, no
framework) shows what the language alone costs before any framework or decision is added.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flinkmem.runtime.certs import ensure_self_signed
from flinkmem.runtime.settings import DEFAULT_RESOURCE
from flinkmem.runtime.webhookconfig import mutating_configuration, validating_configuration
from localplane import controlplane
from localplane.serve import free_port

__all__ = ["NoopServer", "go_noop", "python_noop", "registered"]


@dataclass(frozen=True)
class NoopServer:
    name: str
    pid: int
    url: str
    ca: Path


@contextmanager
def _running(name: str, command: list[str], url: str, ca: Path) -> Iterator[NoopServer]:
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        if not line.startswith("ready"):
            raise RuntimeError(f"{name} did not start: {line!r}")
        yield NoopServer(name, server.pid, url, ca)
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def go_noop(binary: Path, cert_dir: Path, command_prefix: Sequence[str] = ()) -> Iterator[NoopServer]:
    certs = ensure_self_signed(cert_dir, ["127.0.0.1"])
    port = free_port()
    command = [*command_prefix, str(binary), f"-cert={certs.cert}", f"-key={certs.key}", f"-addr=127.0.0.1:{port}"]
    with _running("no-op webhook (Go)", command, f"https://127.0.0.1:{port}", certs.ca) as server:
        yield server


@contextmanager
def python_noop(cert_dir: Path, command_prefix: Sequence[str] = ()) -> Iterator[NoopServer]:
    certs = ensure_self_signed(cert_dir, ["127.0.0.1"])
    port = free_port()
    script = Path(__file__).with_name("noop_webhook.py")
    command = [*command_prefix, sys.executable, str(script), str(certs.cert), str(certs.key), str(port)]
    with _running("no-op webhook (Python)", command, f"https://127.0.0.1:{port}", certs.ca) as server:
        yield server


@contextmanager
def registered(cluster: controlplane.Cluster, server: NoopServer) -> Iterator[None]:
    """The server registered with flinkmem's webhook configurations (names, rules, selectors)."""
    ca_bundle = base64.b64encode(server.ca.read_bytes()).decode()
    try:
        for config in (
            validating_configuration(DEFAULT_RESOURCE, server.url, ca_bundle),
            mutating_configuration(server.url, ca_bundle, resource=DEFAULT_RESOURCE),
        ):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(config))
        yield
    finally:
        cluster.kubectl(
            "delete", "validatingwebhookconfiguration/flinkmem", "mutatingwebhookconfiguration/flinkmem", check=False
        )
