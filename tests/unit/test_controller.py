from __future__ import annotations

import copy
import json
from typing import Any

from flinkmem.controller import options_that_differ, pod_drift, reconcile_deployment, source_differences
from flinkmem.engine import DeploymentMode, FlinkVersion
from flinkmem.podpatch import RESOLVED_ANNOTATION, apply_plan, plan_pod
from flinkmem.sources.flinkdeployment import from_flinkdeployment
from flinkmem.sources.model import FlinkSource
from flinkmem.validation import validate_deployment
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
    plan = plan_pod(pod, validation.jobmanager, validation.source, CONTAINER)
    assert plan is not None
    apply_plan(pod, plan)


def _source(deployment: dict[str, Any]) -> FlinkSource:
    return from_flinkdeployment(deployment)


def test_unmutated_pod_drifts_and_mutated_pod_does_not() -> None:
    deployment = flinkdeployment(memory="2g")
    pod = jobmanager_pod()
    drift = pod_drift(pod, _source(deployment), CONTAINER)
    assert drift is not None
    assert any(d.startswith("limits.memory") for d in drift.differences)
    assert "FLINK_ENV_JAVA_OPTS_JM" in drift.message
    assert drift.message.startswith("JobManager pod ")
    assert "FlinkDeployment jobs/demo" in drift.message
    _sized(pod, deployment)
    assert pod_drift(pod, _source(deployment), CONTAINER) is None


def test_annotations_alone_are_not_drift() -> None:
    deployment = flinkdeployment(memory="2g")
    pod = jobmanager_pod()
    _sized(pod, deployment)
    del pod["metadata"]["annotations"]
    assert pod_drift(pod, _source(deployment), CONTAINER) is None


def test_pod_sized_for_an_older_spec_drifts_once_the_spec_changes() -> None:
    pod = jobmanager_pod()
    _sized(pod, flinkdeployment(memory="2g"))
    drift = pod_drift(pod, _source(flinkdeployment(memory="4g")), CONTAINER)
    assert drift is not None
    assert "requests.memory=4096Mi" in drift.differences


def test_pods_that_are_not_flink_pods_never_drift() -> None:
    pod = jobmanager_pod()
    pod["metadata"]["labels"] = {"app": "demo"}
    assert pod_drift(pod, _source(flinkdeployment(memory="2g")), CONTAINER) is None


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
