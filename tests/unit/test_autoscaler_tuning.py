"""ADR 0007: a TaskManager whose memory the operator's autoscaler tunes is sized from Flink's ConfigMap, which
it runs; everything else keeps the FlinkDeployment's precedence. The difference is reported once, as
expected, and never "fixed".

The tuned cluster is made as the operator makes it (tests/support/apacheoperator.py: the autoscaler's
ConfigChanges from its own MemoryTuningTest, applied as KubernetesScalingRealizer applies them); real
Flink's figures for it are in tests/e2e/test_operator_surface.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from flinkmem.conventions import EVENT_MESSAGE_LIMIT
from flinkmem.decisions.validation import validate_role
from flinkmem.sources.autoscaler import memory_tuning_enabled
from flinkmem.sources.cache import SourceCache
from flinkmem.sources.pods import OpenedPod, open_pod
from flinkmem.sources.roles import JOBMANAGER, TASKMANAGER
from tests.support.apacheoperator import (
    MEMORY_TUNING_CHANGES,
    deployed_configuration,
    flink_configmap,
    realize_config_overrides,
)
from tests.unit.test_controller import make, run

TUNING = {"job.autoscaler.enabled": "true", "job.autoscaler.memory.tuning.enabled": "true"}


def tuned_deployment(config: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "tuned", "namespace": "jobs", "uid": "fd-uid"},
        "spec": {
            "flinkVersion": "v1_20",
            "mode": "standalone",
            "flinkConfiguration": {**TUNING, **(config or {})},
            "jobManager": {"resource": {"memory": "2g", "cpu": 1}},
            "taskManager": {"resource": {"memory": "30g", "cpu": 1}},
        },
    }


def flink_config_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """flink-config-<name> of what the operator deploys for `deployment` with the autoscaler's changes."""
    return flink_configmap(
        deployment, deployed_configuration(realize_config_overrides(deployment, MEMORY_TUNING_CHANGES))
    )


class Lookup:
    def __init__(self, deployment: Mapping[str, Any] | None, configmap: Mapping[str, Any] | None) -> None:
        self.deployment, self.configmap = deployment, configmap

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.deployment

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.configmap


def pod(component: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"tuned-{component}-1",
            "namespace": "jobs",
            "labels": {"app": "tuned", "component": component, "type": "flink-standalone-kubernetes"},
        },
        "spec": {"containers": [{"name": "flink-main-container", "image": "flink:1.20.3", "args": [component]}]},
    }


def opened(component: str, deployment: Mapping[str, Any] | None, configmap: Mapping[str, Any] | None) -> OpenedPod:
    cache = SourceCache(Lookup(deployment, configmap))
    found = asyncio.run(
        open_pod(pod(component), cache, container_name="flink-main-container", resource_plural="flinkdeployments")
    )
    assert found is not None and found.source is not None
    return found


def test_a_tuned_taskmanager_runs_flinks_configmap_and_is_sized_from_it() -> None:
    deployment = tuned_deployment()
    configmap = flink_config_of(deployment)
    tm = opened("taskmanager", deployment, configmap)
    assert tm.source is not None and tm.source.kind == "ConfigMap"
    assert tm.source.config["taskmanager.memory.process.size"] == "20108162027 bytes"
    assert "taskmanager.memory.task.heap.size" not in tm.source.config
    assert tm.deployment is not None and tm.deployment["metadata"]["name"] == "tuned"  # Events still go to it
    assert "autoscaler-tuned" in [n.code for n in tm.source.notices]
    tuned = validate_role(tm.source, TASKMANAGER)
    untuned = validate_role(opened("taskmanager", deployment, None).source, TASKMANAGER)  # type: ignore[arg-type]
    assert tuned.memory is not None and untuned.memory is not None
    # Tuning never goes above the spec: the FlinkDeployment's size is the upper bound.
    assert tuned.memory.total_process == 20108162027 < untuned.memory.total_process == 30 << 30


def test_its_jobmanager_is_never_tuned_and_keeps_the_flinkdeployment() -> None:
    deployment = tuned_deployment()
    jm = opened("jobmanager", deployment, flink_config_of(deployment))
    assert jm.source is not None and jm.source.kind == "FlinkDeployment"


@pytest.mark.parametrize(
    "switches",
    [
        {},
        {"job.autoscaler.enabled": "true"},
        {"job.autoscaler.memory.tuning.enabled": "true"},
        {"job.autoscaler.enabled": "false", "job.autoscaler.memory.tuning.enabled": "true"},
        {"job.autoscaler.enabled": "yes", "job.autoscaler.memory.tuning.enabled": "true"},  # not a Flink boolean
    ],
)
def test_without_both_switches_the_flinkdeployment_decides(switches: dict[str, str]) -> None:
    deployment = tuned_deployment()
    configmap = flink_config_of(deployment)
    text = next(iter(configmap["data"].values()))
    kept = [line for line in text.splitlines() if not line.startswith("job.autoscaler.")]
    configmap["data"] = {"flink-conf.yaml": "\n".join([*kept, *(f"{k}: {v}" for k, v in switches.items())]) + "\n"}
    tm = opened("taskmanager", deployment, configmap)
    assert tm.source is not None and tm.source.kind == "FlinkDeployment"


def test_the_old_keys_and_yaml_booleans_switch_it_on_too() -> None:
    assert memory_tuning_enabled(
        {
            "kubernetes.operator.job.autoscaler.enabled": "TRUE",
            "kubernetes.operator.job.autoscaler.memory.tuning.enabled": True,
        }
    )
    assert not memory_tuning_enabled({"job.autoscaler.enabled": True})


def test_without_flinks_configmap_yet_the_flinkdeployment_is_the_upper_bound() -> None:
    tm = opened("taskmanager", tuned_deployment(), None)
    assert tm.source is not None and tm.source.kind == "FlinkDeployment"


def test_the_difference_is_reported_once_as_expected_and_the_pod_is_not_fixed() -> None:
    controller, sink = make()
    deployment = tuned_deployment()
    configmap = flink_config_of(deployment)
    run(controller, controller.on_flinkdeployment("ADDED", deployment))
    sink.posted.clear()
    run(controller, controller.on_configmap("ADDED", configmap))
    run(
        controller,
        controller.on_configmap("MODIFIED", {**configmap, "metadata": {**configmap["metadata"], "labels": {}}}),
    )
    differs = [(kind, message) for _, kind, reason, message in sink.posted if reason == "MemoryConfigDiffers"]
    assert len(differs) == 1
    kind, message = differs[0]
    assert kind == "Normal"
    assert message.startswith("the operator's autoscaler tuned TaskManager memory")
    # Cut to the Event's length, it still says what to know: the options, and that nothing is "fixed".
    assert len(message) <= EVENT_MESSAGE_LIMIT
    assert "taskmanager.memory.process.size" in message and "leaves the FlinkDeployment as it is" in message
    # A TaskManager pod the operator started with the tuned memory (the autoscaler's process size, in whole
    # MiB rounded up as flinkmem sizes) does not drift: nothing to report or evict.
    tuned_mib = -(-20108162027 // (1 << 20))
    tm = pod("taskmanager")
    tm["metadata"]["uid"] = "tm-uid"
    tm["spec"]["containers"][0]["resources"] = {
        "requests": {"memory": f"{tuned_mib}Mi"},
        "limits": {"memory": f"{tuned_mib}Mi"},
    }
    drift = run(controller, controller.check_pod(tm))
    assert drift is None


def test_a_jobmanager_difference_stays_a_warning_even_when_tuned() -> None:
    controller, sink = make()
    deployment = tuned_deployment()
    configmap = flink_config_of(deployment)
    text = next(iter(configmap["data"].values())).replace(
        "jobmanager.memory.process.size: 2 gb", "jobmanager.memory.process.size: 3 gb"
    )
    configmap["data"] = {"flink-conf.yaml": text}
    run(controller, controller.on_flinkdeployment("ADDED", deployment))
    run(controller, controller.on_configmap("ADDED", configmap))
    kinds = [kind for _, kind, reason, _ in sink.posted if reason == "MemoryConfigDiffers"]
    assert kinds == ["Warning"]


def test_the_switches_survive_the_trimmed_cache() -> None:
    deployment = tuned_deployment()
    cache = SourceCache(Lookup(deployment, None))
    assert cache.remember_configmap(flink_config_of(deployment))
    cached = cache.cached_configmap("jobs", "tuned")
    assert cached is not None and cached.default_file is not None
    assert memory_tuning_enabled(cached.default_file.config)
    assert JOBMANAGER.process_size_key in cached.default_file.config
