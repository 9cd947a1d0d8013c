"""JobManager pods of Flink's native client that flinkmem could not size when they were admitted.

Flink's client creates the JobManager Deployment before the `flink-config-<cluster-id>` ConfigMap,
so the first pod is admitted with no configuration to size it from; and users without the Apache
operator naturally deploy first and describe the cluster in a FlinkDeployment afterwards. In both
cases flinkmem's controller must look at the pods again once their source appears: report a
`MemoryDrift` Event and, with `--evict-drifted`, evict so that the replacement is sized.

Each test runs its own flinkmem, since the flags differ (like test_drift.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest

from localplane.controlplane import Cluster, wait_until
from localplane.serve import running_flinkmem
from tests.e2e.nativeflink import check_jobmanager_pod, flink_version_field, start_native

pytestmark = pytest.mark.e2e

VERSION: Final = "2.3.0"
TASKMANAGER: Final = {"taskmanager.memory.process.size": "1728m"}


def _drift_messages(cluster: Cluster, namespace: str) -> list[str]:
    out = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "reason=MemoryDrift", "-o", "json"
    ).stdout
    return [str(event.get("message", "")) for event in json.loads(out)["items"]]


def test_flinkdeployment_created_after_its_native_cluster_is_checked(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """Deploy first, describe second: the FlinkDeployment asks for 3g, Flink's pod has 2Gi."""
    with running_flinkmem(cluster.kubeconfig, tmp_path / "flinkmem"):
        native = start_native(
            cluster,
            namespace,
            VERSION,
            tmp_path,
            {**TASKMANAGER, "jobmanager.memory.process.size": "2g"},
            cluster_id="late",
        )
        try:
            pod = native.wait_for_pods(1)[0]
            before = set(_drift_messages(cluster, namespace))
            flinkdeployment: dict[str, Any] = {
                "apiVersion": "flink.apache.org/v1beta1",
                "kind": "FlinkDeployment",
                "metadata": {"name": "late"},
                "spec": {
                    "flinkVersion": flink_version_field(VERSION),
                    "jobManager": {"resource": {"memory": "3g", "cpu": 1}},
                    "taskManager": {"resource": {"memory": "1728m", "cpu": 1}},
                },
            }
            applied = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(flinkdeployment))
            assert applied.returncode == 0

            def reported() -> str | None:
                fresh = set(_drift_messages(cluster, namespace)) - before
                found = [m for m in fresh if pod["metadata"]["name"] in m]
                return found[0] if found else None

            wait_until(
                reported,
                timeout=60,
                what=f"a MemoryDrift Event for {pod['metadata']['name']} after the FlinkDeployment",
            )
        finally:
            native.delete()


def test_pod_admitted_before_flink_wrote_its_configmap_is_evicted_and_resized(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """No FlinkDeployment: `-Xmx4g` in the config the first pod could not be checked against."""
    config = {**TASKMANAGER, "jobmanager.memory.process.size": "2g", "env.java.opts.jobmanager": "-Xmx4g"}
    with running_flinkmem(cluster.kubeconfig, tmp_path / "flinkmem", ["--evict-drifted"]):
        native = start_native(cluster, namespace, VERSION, tmp_path, config, cluster_id="early")
        try:
            first = native.wait_for_pods(1)[0]["metadata"]["name"]

            def reported() -> str | None:
                found = [m for m in _drift_messages(cluster, namespace) if first in m]
                return found[0] if found else None

            wait_until(reported, timeout=60, what=f"a MemoryDrift Event for {first}")
            replacement = native.wait_for_pods(1, exclude=[first])[0]
            check_jobmanager_pod(native, replacement)
        finally:
            native.delete()
