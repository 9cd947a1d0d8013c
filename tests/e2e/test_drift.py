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
    found = wait_until(lambda: pods(cluster, namespace, name) or None, what="the unmutated pod")
    pod = found[0]
    main = container(pod, "flink-main-container")
    assert "flinkmem.io/jvm-flags" not in (pod["metadata"].get("annotations") or {})
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
        assert "requests.memory=2048Mi" in message and "limits.memory=2048Mi" in message
        # The Java options carry no memory flag: Flink's own flags are the derived ones, nothing to override.
        assert "FLINK_ENV_JAVA_OPTS_JM" not in message
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
        assert new_pod["metadata"]["annotations"]["flinkmem.io/jvm-flags"].startswith("-Xmx")


def _events(cluster: Cluster, namespace: str, reason: str) -> list[str]:
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", f"reason={reason}", "-o", "json").stdout
    return [e["message"] for e in json.loads(out)["items"]]


def _fresh_pod(cluster: Cluster, namespace: str, app: str, old_name: str) -> dict[str, Any] | None:
    current = [p for p in pods(cluster, namespace, app) if not p["metadata"].get("deletionTimestamp")]
    fresh = [p for p in current if p["metadata"]["name"] != old_name]
    return fresh[0] if fresh else None


def test_a_flinkdeployment_created_after_its_pod_reports_and_replaces_it(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """Deploy first, describe second: the pod had nothing to be sized from when it was admitted."""
    with running_flinkmem(cluster.kubeconfig, tmp_path / "flinkmem", ["--evict-drifted"]):
        assert apply(cluster, namespace, jobmanager_deployment("late")).returncode == 0
        first = wait_until(lambda: pods(cluster, namespace, "late") or None, what="the JobManager pod")[0]
        assert "memory" not in container(first, "flink-main-container").get("resources", {}).get("limits", {})
        assert wait_until(lambda: _events(cluster, namespace, "MemoryNotApplied") or None, what="MemoryNotApplied")

        assert apply(cluster, namespace, flinkdeployment("late", {}, memory="2g")).returncode == 0
        message = wait_until(lambda: _events(cluster, namespace, "MemoryDrift") or None, what="a MemoryDrift event")[0]
        assert first["metadata"]["name"] in message and "FlinkDeployment" in message
        replacement = wait_until(
            lambda: _fresh_pod(cluster, namespace, "late", first["metadata"]["name"]),
            timeout=60,
            what="the pod recreated through the webhook",
        )
        main = container(replacement, "flink-main-container")
        assert main["resources"]["limits"]["memory"] in ("2Gi", "2048Mi")  # the API server may canonicalize
        assert wait_until(lambda: _events(cluster, namespace, "MemoryDriftEvicted") or None, what="the eviction Event")
        assert replacement["metadata"]["annotations"]["flinkmem.io/jvm-flags"] == (
            "-Xmx1530082096 -Xms1530082096 -XX:MaxMetaspaceSize=268435456"
        )
        assert "FLINK_ENV_JAVA_OPTS_JM" not in env_of(main)


def test_flinks_configmap_arriving_after_the_pod_sizes_its_replacement(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """Flink's native client creates flink-config-<cluster-id> after the JobManager Deployment."""
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flink-config-native", "labels": {"app": "native", "type": "flink-native-kubernetes"}},
        "data": {"config.yaml": "jobmanager:\n  memory:\n    process.size: 1600m\n"},
    }
    with running_flinkmem(cluster.kubeconfig, tmp_path / "flinkmem", ["--evict-drifted"]):
        assert apply(cluster, namespace, jobmanager_deployment("native")).returncode == 0
        first = wait_until(lambda: pods(cluster, namespace, "native") or None, what="the JobManager pod")[0]
        assert "memory" not in container(first, "flink-main-container").get("resources", {}).get("limits", {})

        assert apply(cluster, namespace, configmap).returncode == 0
        message = wait_until(lambda: _events(cluster, namespace, "MemoryDrift") or None, what="a MemoryDrift event")[0]
        assert "ConfigMap" in message and "flink-config-native" in message
        replacement = wait_until(
            lambda: _fresh_pod(cluster, namespace, "native", first["metadata"]["name"]),
            timeout=60,
            what="the pod recreated through the webhook",
        )
        main = container(replacement, "flink-main-container")
        assert main["resources"]["requests"]["memory"] == "1600Mi"
        # Flink's heap for a 1600m JobManager (spec vector C01).
        assert replacement["metadata"]["annotations"]["flinkmem.io/jvm-flags"].startswith(
            "-Xmx1073741824 -Xms1073741824"
        )
        annotation = json.loads(replacement["metadata"]["annotations"]["flinkmem.io/resolved-memory"])
        assert annotation["source"] == f"ConfigMap {namespace}/flink-config-native"


def test_a_flinkdeployment_and_flinks_configmap_that_disagree_are_reported(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """The Apache operator merges defaults of its own into what Flink receives; flinkmem says where the
    configuration Flink wrote resolves differently from the FlinkDeployment."""
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flink-config-merged", "labels": {"app": "merged", "type": "flink-native-kubernetes"}},
        "data": {
            "config.yaml": (
                "jobmanager.memory.process.size: 2g\njobmanager.memory.jvm-metaspace.size: 512m\n"
                "taskmanager.memory.process.size: 1728m\n"
            )
        },
    }
    with running_flinkmem(cluster.kubeconfig, tmp_path / "flinkmem"):
        assert apply(cluster, namespace, flinkdeployment("merged", {}, memory="2g")).returncode == 0
        assert apply(cluster, namespace, configmap).returncode == 0
        message = wait_until(
            lambda: _events(cluster, namespace, "MemoryConfigDiffers") or None, what="a MemoryConfigDiffers event"
        )[0]
        assert "flink-config-merged resolves differently" in message
        assert "MaxMetaspaceSize=536870912" in message
        assert "jobmanager.memory.jvm-metaspace.size" in message
