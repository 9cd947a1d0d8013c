"""Runs `flinkmem serve` as a real process against a cluster, for the e2e tests and the demo.

With `keep`, the process is left running after the context (for `make demo KEEP=1`).
The process makes its own development CA, registers URL-based webhook configurations pointing at
127.0.0.1, installs the bundled FlinkDeployment CRD if needed, and is stopped (and its webhook
configurations removed) when the context ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localplane.controlplane import WEBHOOK_CLIENT_CN, Pki, kubectl_binary

__all__ = ["RunningOperator", "free_port", "running_flinkmem", "serve_process"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningOperator:
    process: subprocess.Popen[bytes]
    webhook_port: int
    health_port: int
    cert_dir: Path
    log_path: Path
    # The API server's webhook client certificate, when flinkmem answers only that (api_server_only).
    client_cert: tuple[Path, Path] | None = None

    @property
    def webhook_url(self) -> str:
        return f"https://127.0.0.1:{self.webhook_port}"

    @property
    def ca_file(self) -> Path:
        return self.cert_dir / "ca.crt"

    def ssl_context(self, as_api_server: bool = True) -> ssl.SSLContext:
        """A client context trusting flinkmem's CA; `as_api_server`, with the API server's client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if as_api_server and self.client_cert is not None:
            context.load_cert_chain(*self.client_cert)
        return context

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics(self) -> str:
        return self.get("/metrics")[1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


# Dry runs that go through each webhook: answered by a live flinkmem, or failing with "failed calling
# webhook" while the API server still calls an earlier registration.
_PROBES = {
    "validating": {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "flinkmem-registration-probe", "namespace": "default"},
        "spec": {
            "flinkVersion": "v1_20",
            "jobManager": {"resource": {"memory": "2g", "cpu": 1}},
            "taskManager": {"resource": {"memory": "2g", "cpu": 1}},
        },
    },
    "mutating": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "flinkmem-registration-probe",
            "namespace": "default",
            "labels": {
                "app": "flinkmem-registration-probe",
                "component": "jobmanager",
                "type": "flink-native-kubernetes",
            },
        },
        "spec": {"containers": [{"name": "flink-main-container", "image": "flink"}]},
    },
}


def wait_until_called(kubeconfig: Path, timeout: float = 120.0) -> None:
    """Until the API server calls the webhooks just registered: it applies a new registration a moment
    after the write (its webhook configurations come from an informer), and until then it still calls
    the previous one, often a flinkmem that has stopped. Each probe is a dry run, counted by flinkmem
    as one review."""
    deadline = time.monotonic() + timeout
    for name, probe in _PROBES.items():
        while True:
            result = _kubectl(kubeconfig, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe))
            output = result.stdout + result.stderr
            # The pod webhook fails open, so only flinkmem's own warning tells that it answered.
            answered = "failed calling webhook" not in output and (
                "flinkmem" in output if name == "mutating" else result.returncode == 0 or "flinkmem" in output
            )
            if answered:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server still does not call the {name} webhook just registered:\n{output}")
            time.sleep(0.5)


@contextmanager
def serve_process(
    kubeconfig: Path,
    workdir: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    keep: bool = False,
    ready_timeout: float = 60.0,
    command_prefix: Sequence[str] = (),
    webhook_port: int | None = None,
) -> Iterator[RunningOperator]:
    """`flinkmem serve ARGS` on free loopback ports, as `kubeconfig`'s identity, until ready.

    With `env`, the process gets exactly those FLINKMEM_* variables (none of the caller's). It is
    stopped when the context ends, unless `keep`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    webhook_port = webhook_port or free_port()
    health_port = free_port()
    log_path = workdir / f"flinkmem-{webhook_port}.log"
    command = [
        *command_prefix,
        sys.executable,
        "-m",
        "flinkmem",
        "serve",
        "--webhook-port",
        str(webhook_port),
        "--health-port",
        str(health_port),
        "--bind-address",
        "127.0.0.1",
        *args,
    ]
    base = dict(os.environ)
    if env is not None:
        base = {k: v for k, v in base.items() if not k.startswith("FLINKMEM_")} | dict(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**base, "KUBECONFIG": str(kubeconfig)},
            start_new_session=True,
        )
    running = RunningOperator(process, webhook_port, health_port, workdir / "certs", log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if not running.alive():
                raise RuntimeError(f"flinkmem serve exited early:\n{running.log()[-4000:]}")
            try:
                if running.get("/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"flinkmem serve not ready in {ready_timeout}s:\n{running.log()[-4000:]}")
            time.sleep(0.2)
        yield running
    finally:
        if running.alive() and not keep:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def api_server_only(kubeconfig: Path) -> list[str]:
    """The flags that make flinkmem answer only the API server of the local control plane `kubeconfig`
    belongs to, when that plane gives its API server a webhook client certificate; else none."""
    pki = Pki(kubeconfig.parent / "pki")
    if not pki.admission_config.is_file():
        return []
    return ["--client-ca-file", str(pki.ca_cert), "--client-name", WEBHOOK_CLIENT_CN]


@contextmanager
def running_flinkmem(
    kubeconfig: Path,
    workdir: Path,
    extra_args: Sequence[str] = (),
    *,
    unregister: bool = True,
    keep: bool = False,
    ready_timeout: float = 60.0,
    command_prefix: Sequence[str] = (),
) -> Iterator[RunningOperator]:
    """flinkmem in development mode: its own CA, URL-registered webhooks and the bundled CRD.

    On a local control plane, whose kube-apiserver presents a client certificate to webhooks, flinkmem
    answers only that certificate (`--client-ca-file`, `--client-name`), as a hardened install does.
    """
    cert_dir = workdir / "certs"
    webhook_port = free_port()
    hardened = bool(api_server_only(kubeconfig))
    args = [
        "--self-signed-dir",
        str(cert_dir),
        "--register-url",
        f"https://127.0.0.1:{webhook_port}",
        "--install-crd",
        *api_server_only(kubeconfig),
        *extra_args,
    ]
    try:
        with serve_process(
            kubeconfig,
            workdir,
            args,
            keep=keep,
            ready_timeout=ready_timeout,
            command_prefix=command_prefix,
            webhook_port=webhook_port,
        ) as running:
            if hardened:
                running.client_cert = Pki(kubeconfig.parent / "pki").webhook_client
            _kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/flinkdeployments.flink.apache.org")
            wait_until_called(kubeconfig)
            yield running
    finally:
        if unregister:
            _kubectl(
                kubeconfig,
                "delete",
                "validatingwebhookconfiguration/flinkmem",
                "mutatingwebhookconfiguration/flinkmem",
                "--ignore-not-found",
            )
