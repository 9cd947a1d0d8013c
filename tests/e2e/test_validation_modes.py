"""warn and audit modes through the real API server: conflicts are admitted, told or only recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localplane.controlplane import Cluster, wait_until
from localplane.serve import running_flinkmem
from tests.e2e.test_webhooks import EXAMPLES, apply, get

pytestmark = pytest.mark.e2e

CONFLICT = EXAMPLES / "10-conflict-heap-larger-than-process.yaml"


def test_warn_mode_admits_conflicts_with_kubectl_warnings(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    with running_flinkmem(cluster.kubeconfig, tmp_path, ["--validation-mode", "warn"]):
        result = apply(cluster, namespace, CONFLICT)
        assert result.returncode == 0, result.stderr
        warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
        assert any("flinkmem (warn mode)" in w for w in warnings), result.stderr
        assert "jobmanager.memory.process.size" in " ".join(warnings)


def test_audit_mode_admits_silently_and_records(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    with running_flinkmem(cluster.kubeconfig, tmp_path, ["--validation-mode", "audit"]) as operator:
        result = apply(cluster, namespace, CONFLICT)
        assert result.returncode == 0, result.stderr
        assert "flinkmem" not in result.stderr
        wait_until(
            lambda: (
                "MemoryConflict"
                in cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "reason=MemoryConflict").stdout
            ),
            what="a MemoryConflict event",
        )
        stored = get(cluster, namespace, "flinkdeployment", "heap-too-big")
        assert stored is not None
        annotation = json.loads(stored["metadata"]["annotations"]["flinkmem.io/resolved-memory"])
        assert annotation["valid"] is False
        assert 'flinkmem_resolutions_total{result="process-below-flink-plus-metaspace",source="webhook"}' in (
            operator.metrics()
        )
        assert "audited FlinkDeployment heap-too-big" in operator.log()
