"""`flinkmem serve` runs the controller in a child process; losing it must not go unnoticed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from flinkmem.runtime.serve import CONTROLLER_NICENESS
from localplane.controlplane import Cluster, wait_until
from localplane.serve import RunningOperator, running_flinkmem
from tests.unit.fixtures import flinkdeployment

pytestmark = pytest.mark.e2e


def _controller_pid(parent: int) -> int:
    children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    for pid in children:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "multiprocessing" in cmdline and "resource_tracker" not in cmdline:
            return int(pid)
    raise AssertionError(f"no controller process among {children}")


def _liveness(operator: RunningOperator) -> int:
    """/healthz's status; 0 once the health port is closed (the server stopping)."""
    try:
        return operator.get("/healthz")[0]
    except OSError:
        return 0


def test_losing_the_controller_fails_liveness_and_stops_the_server(cluster: Cluster, tmp_path: Path) -> None:
    with running_flinkmem(cluster.kubeconfig, tmp_path) as operator:
        assert operator.get("/healthz")[0] == 200
        os.kill(_controller_pid(operator.process.pid), signal.SIGKILL)
        wait_until(lambda: _liveness(operator) != 200 or not operator.alive(), what="liveness to fail")
        assert operator.process.wait(timeout=30) == 1
        assert "the controller process exited" in operator.log()


def test_sigterm_stops_both_processes(cluster: Cluster, tmp_path: Path) -> None:
    with running_flinkmem(cluster.kubeconfig, tmp_path) as operator:
        controller = _controller_pid(operator.process.pid)
        operator.process.send_signal(signal.SIGTERM)
        assert operator.process.wait(timeout=30) == 0
        wait_until(lambda: not Path(f"/proc/{controller}").exists(), what="the controller process to end")


def test_the_controller_dies_with_the_server_however_the_server_dies(cluster: Cluster, tmp_path: Path) -> None:
    # Outside a container nothing else would end an orphaned controller, which would go on
    # reconciling and holding the peering.
    with running_flinkmem(cluster.kubeconfig, tmp_path) as operator:
        controller = _controller_pid(operator.process.pid)
        operator.process.send_signal(signal.SIGKILL)
        operator.process.wait(timeout=30)
        wait_until(lambda: not Path(f"/proc/{controller}").exists(), what="the orphaned controller to end")


def _niceness(pid: int) -> int:
    # Field 19 of /proc/PID/stat; the command name (field 2) may hold spaces, so split after its ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_controller_yields_the_cpu_to_the_webhooks(cluster: Cluster, tmp_path: Path) -> None:
    with running_flinkmem(cluster.kubeconfig, tmp_path) as operator:
        parent = operator.process.pid
        controller = _controller_pid(parent)
        assert CONTROLLER_NICENESS > 0
        # The child lowers its own priority once it has started up, which may be after the webhooks serve.
        wait_until(
            lambda: _niceness(controller) == _niceness(parent) + CONTROLLER_NICENESS,
            what="the controller's lower priority",
        )


def _validations(metrics: str) -> float:
    prefix = 'flinkmem_admission_requests_total{decision="'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(prefix) and 'webhook="validate-flinkdeployment"' in line
    )


def test_named_service_account_spares_flinkmem_its_own_annotation_writes(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    # As in the chart: with --service-account the dev registration carries the same matchConditions.
    cluster.kubectl("create", "serviceaccount", "flinkmem", "-n", namespace)
    binding = f"{namespace}-flinkmem-admin"
    cluster.kubectl(
        "create", "clusterrolebinding", binding, "--clusterrole=cluster-admin", f"--serviceaccount={namespace}:flinkmem"
    )
    me = f"system:serviceaccount:{namespace}:flinkmem"
    token = cluster.kubectl("create", "token", "flinkmem", "-n", namespace, "--duration=1h").stdout.strip()
    identity = cluster.with_token(token, namespace)
    try:
        _check_own_writes_skip_the_webhook(cluster, identity, me, namespace, tmp_path)
    finally:
        cluster.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")


def _check_own_writes_skip_the_webhook(
    cluster: Cluster, identity: Cluster, me: str, namespace: str, tmp_path: Path
) -> None:
    # Created before flinkmem runs (no webhook yet): the controller writes its annotation with a PATCH.
    early = json.dumps(flinkdeployment(name="self-writes-early", namespace=namespace))
    cluster.kubectl("apply", "-f", "-", input=early)
    with running_flinkmem(identity.kubeconfig, tmp_path, ["--service-account", me]) as operator:
        before = _validations(operator.metrics())  # running_flinkmem's own probe is one
        manifest = json.dumps(flinkdeployment(name="self-writes", namespace=namespace))
        wait_until(
            lambda: cluster.kubectl("apply", "-f", "-", input=manifest, check=False).returncode == 0,
            what="the FlinkDeployment to be admitted",
        )

        def annotated(name: str) -> bool:
            text = cluster.kubectl("get", "flinkdeployment", name, "-n", namespace, "-o", "json").stdout
            return "flinkmem.io/resolved-memory" in text

        wait_until(lambda: annotated("self-writes"), what="the annotation of the FlinkDeployment created")
        wait_until(lambda: annotated("self-writes-early"), what="the controller's annotation of the earlier one")
        # The user's CREATE was reviewed (its annotation came with it, from the record webhook); the
        # controller's annotation patch of the earlier one never reached the validating webhook.
        assert _validations(operator.metrics()) - before == 1
