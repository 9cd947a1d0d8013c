from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from typing import Any

from flinkmem.conventions import RESOLVED_ANNOTATION
from flinkmem.decisions.podplan import apply_plan, plan_pod
from flinkmem.decisions.reconcile import (
    Drift,
    options_that_differ,
    pod_drift,
    reconcile_deployment,
    source_differences,
)
from flinkmem.decisions.validation import validate_deployment
from flinkmem.engine import DeploymentMode, FlinkVersion
from flinkmem.sources.cache import SourceCache
from flinkmem.sources.flinkdeployment import from_flinkdeployment
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.pods import OpenedPod, open_pod
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

CONTAINER = "flink-main-container"


def test_valid_deployment_resolves_with_normal_event() -> None:
    result = reconcile_deployment(flinkdeployment(memory="1600m"), CONTAINER)
    assert result.changed
    assert (result.event_type, result.reason) == ("Normal", "MemoryResolved")
    data = json.loads(result.annotation)
    assert data["valid"] is True
    assert data["jobmanager"]["memory"]["jvmHeap"] == 1073741824  # spec vector C01
    assert "JobManager: total process 1.56 GiB" in result.message
    assert "-Xmx1073741824" in result.message


def test_conflict_gives_warning_event() -> None:
    result = reconcile_deployment(flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g"), CONTAINER)
    assert (result.event_type, result.reason) == ("Warning", "MemoryConflict")
    assert json.loads(result.annotation)["valid"] is False
    assert "jobmanager.memory.process.size" in result.message


def test_unchanged_annotation_means_no_new_work() -> None:
    obj = flinkdeployment(memory="1600m")
    first = reconcile_deployment(obj, CONTAINER)
    obj = copy.deepcopy(obj)
    obj["metadata"]["annotations"] = {RESOLVED_ANNOTATION: first.annotation}
    assert not reconcile_deployment(obj, CONTAINER).changed


def _sized(pod: dict[str, Any], deployment: dict[str, Any]) -> None:
    validation = validate_deployment(deployment)
    assert validation.source is not None and validation.jobmanager is not None
    plan = plan_pod(pod, len(pod["spec"]["containers"]) - 1, validation.jobmanager, validation.source)
    assert plan is not None
    apply_plan(pod, plan)


def _source(deployment: dict[str, Any]) -> FlinkSource:
    return from_flinkdeployment(deployment)


class _Only:
    """API reads that know one FlinkDeployment."""

    def __init__(self, deployment: Mapping[str, Any]) -> None:
        self.deployment = deployment

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.deployment

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None


def _opened(pod: dict[str, Any], deployment: dict[str, Any]) -> OpenedPod | None:
    lookup = SourceCache(_Only(deployment))
    return asyncio.run(open_pod(pod, lookup, container_name=CONTAINER, resource_plural="flinkdeployments"))


def _drift(pod: dict[str, Any], deployment: dict[str, Any]) -> Drift | None:
    opened = _opened(pod, deployment)
    assert opened is not None
    return pod_drift(pod, opened)


def test_unmutated_pod_drifts_and_mutated_pod_does_not() -> None:
    deployment = flinkdeployment({"env.java.opts.jobmanager": "-Xmx4g"}, memory="2g")
    pod = jobmanager_pod()
    drift = _drift(pod, deployment)
    assert drift is not None
    assert any(d.startswith("limits.memory") for d in drift.differences)
    assert "FLINK_ENV_JAVA_OPTS_JM" in drift.message  # the -Xmx4g must be overridden
    assert drift.message.startswith("JobManager pod ")
    assert "FlinkDeployment jobs/demo" in drift.message
    _sized(pod, deployment)
    assert _drift(pod, deployment) is None


def test_annotations_alone_are_not_drift() -> None:
    deployment = flinkdeployment(memory="2g")
    pod = jobmanager_pod()
    _sized(pod, deployment)
    del pod["metadata"]["annotations"]
    assert _drift(pod, deployment) is None


def test_pod_sized_for_an_older_spec_drifts_once_the_spec_changes() -> None:
    pod = jobmanager_pod()
    _sized(pod, flinkdeployment(memory="2g"))
    drift = _drift(pod, flinkdeployment(memory="4g"))
    assert drift is not None
    assert "requests.memory=4096Mi" in drift.differences


def test_pods_that_are_not_flink_pods_never_drift() -> None:
    pod = jobmanager_pod()
    pod["metadata"]["labels"] = {"app": "demo"}
    assert _opened(pod, flinkdeployment(memory="2g")) is None


def test_a_flink_configmap_that_resolves_alike_is_no_difference() -> None:
    ours = _source(flinkdeployment(memory="2g"))
    same = FlinkSource(
        "ConfigMap",
        "flink-config-demo",
        "jobs",
        {"jobmanager.memory.process.size": "2048m", "taskmanager.memory.process.size": "1728m"},
        ours.version,
        ours.mode,
    )
    assert source_differences(ours, same) == ()
    other = FlinkSource(
        "ConfigMap",
        "flink-config-demo",
        "jobs",
        {
            "jobmanager.memory.process.size": "2048m",
            "jobmanager.memory.jvm-metaspace.size": "512m",
            "taskmanager.memory.process.size": "1728m",
        },
        FlinkVersion(1, 20),
        DeploymentMode.NATIVE,
    )
    found = source_differences(ours, other)
    assert found and all(f.startswith("JobManager ") for f in found)
    assert any("JVM flags" in f and "MaxMetaspaceSize=536870912" in f for f in found)
    assert options_that_differ(ours, other, ("jobmanager.memory.",)) == (
        "jobmanager.memory.jvm-metaspace.size",
        "jobmanager.memory.process.size",
    )
