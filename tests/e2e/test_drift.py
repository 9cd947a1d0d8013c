"""What happens to JobManager pods created while flinkmem is down, against the real API server.

The pod webhook fails open (failurePolicy Ignore), so the pod is created unchanged; once flinkmem
is back its controller reports the drift with an Event and a metric, and with eviction enabled in
enforce mode it evicts the pod so that its Deployment recreates it through the webhook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localplane.controlplane import Cluster, wait_until
from localplane.serve import running_flinkmem
from tests.e2e.test_webhooks import apply, container, env_of, flinkdeployment, jobmanager_deployment

pytestmark = pytest.mark.e2e


def pods(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def drift_metric(text: str, namespace: str) -> float:
    for line in text.splitlines():
        if line.startswith("flinkmem_drift_detected_total") and f'namespace="{namespace}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _create_unmutated_pod(cluster: Cluster, namespace: str, workdir: Path, name: str) -> dict[str, Any]:
    with running_flinkmem(cluster.kubeconfig, workdir / "first", unregister=False):
        assert apply(cluster, namespace, flinkdeployment(name, {}, memory="2g")).returncode == 0
    # flinkmem is gone but its webhook configurations still point at it.
    assert apply(cluster, namespace, jobmanager_deployment(name)).returncode == 0
    found = wait_until(lambda: pods(cluster, namespace, name), what="the unmutated pod")
    pod = found[0]
    main = container(pod, "flink-main-container")
    assert "FLINK_ENV_JAVA_OPTS_JM" not in env_of(main)
    assert "memory" not in main["resources"].get("limits", {})
    return pod


def test_pod_created_while_down_is_reported_as_drift(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    pod = _create_unmutated_pod(cluster, namespace, tmp_path, "drifted")
    with running_flinkmem(cluster.kubeconfig, tmp_path / "second") as operator:

        def drift_event() -> str | None:
            out = cluster.kubectl(
                "get", "events", "-n", namespace, "--field-selector", "reason=MemoryDrift", "-o", "json"
            ).stdout
            messages = [e["message"] for e in json.loads(out)["items"]]
            return messages[0] if messages else None

        message = wait_until(drift_event, what="a MemoryDrift event")
        assert pod["metadata"]["name"] in message
        assert "limits.memory=2048Mi" in message and "FLINK_ENV_JAVA_OPTS_JM" in message
        assert drift_metric(operator.metrics(), namespace) >= 1
        # Reporting is not eviction: without --evict-drifted the pod stays.
        assert [p["metadata"]["name"] for p in pods(cluster, namespace, "drifted")] == [pod["metadata"]["name"]]


def test_enforce_mode_eviction_recreates_the_pod_through_the_webhook(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    pod = _create_unmutated_pod(cluster, namespace, tmp_path, "evicted")
    with running_flinkmem(cluster.kubeconfig, tmp_path / "second", ["--evict-drifted"]):

        def replacement() -> dict[str, Any] | None:
            current = [p for p in pods(cluster, namespace, "evicted") if not p["metadata"].get("deletionTimestamp")]
            fresh = [p for p in current if p["metadata"]["name"] != pod["metadata"]["name"]]
            return fresh[0] if fresh else None

        new_pod = wait_until(replacement, timeout=60, what="a recreated JobManager pod")
        main = container(new_pod, "flink-main-container")
        assert main["resources"]["limits"]["memory"] in ("2Gi", "2048Mi")
        assert env_of(main)["FLINK_ENV_JAVA_OPTS_JM"].startswith("-Xmx")
