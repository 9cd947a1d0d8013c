"""Runs `flinkmem serve` as the chart would configure it, under any identity, for the RBAC tests.

Unlike tests.support.operator.running_flinkmem, it passes neither --install-crd nor --register-url
(the chart's ServiceAccount may do neither; the test does both as admin), takes its FLINKMEM_*
environment from the rendered Deployment, and serves a certificate made for 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flinkmem.certs import CertPaths, ensure_self_signed
from tests.support.operator import free_port

__all__ = ["Flinkmem", "running"]


@dataclass
class Flinkmem:
    process: subprocess.Popen[bytes]
    webhook_port: int
    health_port: int
    certs: CertPaths
    log_path: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.webhook_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@contextmanager
def running(
    kubeconfig: Path,
    workdir: Path,
    env: Mapping[str, str],
    args: Sequence[str] = (),
    *,
    ready_timeout: float = 60.0,
) -> Iterator[Flinkmem]:
    """`flinkmem serve ARGS` with ``env`` (FLINKMEM_* of the rendered chart) as the ``kubeconfig`` identity."""
    workdir.mkdir(parents=True, exist_ok=True)
    certs = ensure_self_signed(workdir / "certs", ["127.0.0.1"])
    webhook_port, health_port = free_port(), free_port()
    log_path = workdir / "flinkmem.log"
    command = [
        sys.executable,
        "-m",
        "flinkmem",
        "serve",
        "--tls-cert-file",
        str(certs.cert),
        "--tls-key-file",
        str(certs.key),
        "--webhook-port",
        str(webhook_port),
        "--health-port",
        str(health_port),
        "--bind-address",
        "127.0.0.1",
        *args,
    ]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLINKMEM_") and k != "POD_ID"}
    full_env = {**clean, **env, "KUBECONFIG": str(kubeconfig)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
    handle = Flinkmem(process, webhook_port, health_port, certs, log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while not handle.ready():
            if process.poll() is not None:
                raise RuntimeError(f"flinkmem serve exited early:\n{handle.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"flinkmem serve not ready in {ready_timeout}s:\n{handle.log()[-4000:]}")
            time.sleep(0.2)
        yield handle
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
