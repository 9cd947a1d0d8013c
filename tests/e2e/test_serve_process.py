"""`flinkmem serve` runs the controller in a child process; losing it must not go unnoticed."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.controlplane import Cluster, wait_until
from tests.support.operator import running_flinkmem

pytestmark = pytest.mark.e2e


def _controller_pid(parent: int) -> int:
    children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    for pid in children:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "multiprocessing" in cmdline and "resource_tracker" not in cmdline:
            return int(pid)
    raise AssertionError(f"no controller process among {children}")


def test_losing_the_controller_fails_liveness_and_stops_the_server(cluster: Cluster, tmp_path: Path) -> None:
    with running_flinkmem(cluster.kubeconfig, tmp_path) as operator:
        assert operator.get("/healthz")[0] == 200
        os.kill(_controller_pid(operator.process.pid), signal.SIGKILL)
        wait_until(lambda: operator.get("/healthz")[0] == 503 or not operator.alive(), what="liveness to fail")
        assert operator.process.wait(timeout=30) == 1
        assert "the controller process exited" in operator.log()


def test_sigterm_stops_both_processes(cluster: Cluster, tmp_path: Path) -> None:
    with running_flinkmem(cluster.kubeconfig, tmp_path) as operator:
        controller = _controller_pid(operator.process.pid)
        operator.process.send_signal(signal.SIGTERM)
        assert operator.process.wait(timeout=30) == 0
        wait_until(lambda: not Path(f"/proc/{controller}").exists(), what="the controller process to end")
