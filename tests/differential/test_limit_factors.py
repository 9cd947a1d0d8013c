"""The TaskManager's memory limit factor against real Flink: Flink's own KubernetesTaskManagerFactory
(the reference harness with `verify`) refuses a factor below 1 when it builds the pod, and flinkmem's
validation refuses exactly the same factors (the JobManager's are in vectors.py, K12 and K13), on
every line: before 1.15 the option does not exist, so no factor is refused and the limit is the request."""

from __future__ import annotations

import pytest

from flinkmem.decisions.validation import validate_role
from flinkmem.engine import DeploymentMode, FlinkVersion
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.roles import TASKMANAGER
from tests.differential.flinkref import run_reference
from tests.differential.lines import VERSIONS

pytestmark = pytest.mark.differential

FACTORS = ("0.5", "0.999", "1", "1.0", "1.25", "4", "1e10", "NaN", "-1", "Infinity")
KEY = "kubernetes.taskmanager.memory.limit-factor"


@pytest.mark.parametrize("version", VERSIONS)
def test_taskmanager_limit_factor_refused_exactly_where_flink_refuses(version: str) -> None:
    records = [
        {
            "id": factor,
            "role": "taskmanager",
            "mode": "native",
            "config": {"taskmanager.memory.process.size": "2g", KEY: factor},
        }
        for factor in FACTORS
    ]
    flink = {r["id"]: r for r in run_reference(version, records, verify=True)}
    line = FlinkVersion.parse(version)
    for factor in FACTORS:
        config = {"taskmanager.memory.process.size": "2g", KEY: factor}
        result = validate_role(FlinkSource("file", "f", "", config, line, DeploymentMode.NATIVE), TASKMANAGER)
        refused_by_flink = not flink[factor]["valid"]
        assert refused_by_flink == (not result.valid), (factor, flink[factor].get("error"), result.conflicts)
        if refused_by_flink:
            assert "limit-factor" in str(flink[factor]["error"])
            assert [c.code for c in result.conflicts] == ["limit-factor-below-one"]
        else:
            # Flink's own pod: its memory request and limit are what flinkmem says Flink sets.
            assert result.container is not None
            assert flink[factor]["k8s"]["memory"] == f"{result.container.flink_request_mib}Mi"
            assert flink[factor]["k8s"]["memoryLimit"] == f"{result.container.flink_limit_mib}Mi"
