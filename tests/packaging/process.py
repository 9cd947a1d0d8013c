"""Runs `flinkmem serve` as the chart would configure it, under any identity, for the RBAC tests.

Unlike localplane.serve.running_flinkmem, it passes neither --install-crd nor --register-url
(the chart's ServiceAccount may do neither; the test does both as admin), takes its FLINKMEM_*
environment from the rendered Deployment, and serves a certificate made for 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from flinkmem.runtime.certs import ensure_self_signed
from localplane.serve import RunningOperator, serve_process

__all__ = ["Flinkmem", "running"]

Flinkmem = RunningOperator


@contextmanager
def running(
    kubeconfig: Path,
    workdir: Path,
    env: Mapping[str, str],
    args: Sequence[str] = (),
    *,
    ready_timeout: float = 60.0,
) -> Iterator[RunningOperator]:
    """`flinkmem serve ARGS` with ``env`` (FLINKMEM_* of the rendered chart) as the ``kubeconfig`` identity."""
    certs = ensure_self_signed(workdir / "certs", ["127.0.0.1"])
    tls = ["--tls-cert-file", str(certs.cert), "--tls-key-file", str(certs.key)]
    with serve_process(kubeconfig, workdir, [*tls, *args], env=env, ready_timeout=ready_timeout) as handle:
        yield handle
