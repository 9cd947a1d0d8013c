"""AdmissionReviews answered straight from flinkmem's decisions (the default admission engine): the
same answers as the decisions give, a pod's JSON patch built from its plan, refusals counted."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
from collections.abc import Mapping
from typing import Any

import jsonpatch

from flinkmem.metrics import Metrics
from flinkmem.podpatch import apply_plan, main_container, plan_pod
from flinkmem.refusals import RefusalLog
from flinkmem.reviews import DirectAdmission
from flinkmem.settings import MUTATE_ID, VALIDATE_ID, Settings
from flinkmem.validation import validate_deployment
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

C02_FLAGS = "-Xmx1530082096 -Xms1530082096 -XX:MaxMetaspaceSize=268435456"


class FakeCluster:
    """What DirectAdmission uses of cluster.Cluster: settings, metrics and Events."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings(self_signed_dir=None)
        self.metrics = Metrics()
        self.events: list[tuple[str, str, str]] = []

    async def post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


class Lookup:
    def __init__(self, deployment: Mapping[str, Any] | None) -> None:
        self.deployment = deployment

    async def flinkdeployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.deployment

    async def configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None


def review(resource: dict[str, str], obj: Any, operation: str = "CREATE", old: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "resource": resource,
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": obj,
            "oldObject": old,
            "namespace": "jobs",
        },
    }


FD = {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"}
PODS = {"group": "", "version": "v1", "resource": "pods"}


def answer(direct: DirectAdmission, webhook: str, data: dict[str, Any]) -> dict[str, Any]:
    async def run() -> dict[str, Any] | None:
        result = await direct(webhook, data)
        await asyncio.gather(*direct.background)
        return result

    result = asyncio.run(run())
    assert result is not None
    response: dict[str, Any] = result["response"]
    assert response["uid"] == "u-1"
    return response


def make(deployment: Mapping[str, Any] | None = None) -> tuple[DirectAdmission, FakeCluster]:
    cluster = FakeCluster()
    direct = DirectAdmission(cluster, Lookup(deployment), RefusalLog(logging.getLogger("test.reviews")))  # type: ignore[arg-type]
    return direct, cluster


def test_a_valid_flinkdeployment_is_allowed_and_a_conflict_refused_with_its_reason() -> None:
    direct, cluster = make()
    assert answer(direct, VALIDATE_ID, review(FD, flinkdeployment(memory="2g"))) == {"uid": "u-1", "allowed": True}
    refused = answer(
        direct, VALIDATE_ID, review(FD, flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g"))
    )
    assert refused["allowed"] is False and refused["status"]["code"] == 422
    assert "JobManager: jobmanager.memory.process.size (1 GiB)" in refused["status"]["message"]
    assert cluster.events == []  # a refused CREATE has no object to post an Event about


def test_a_refused_update_of_an_existing_object_gets_one_event_per_interval() -> None:
    direct, cluster = make()
    old = flinkdeployment(memory="2g")
    old["metadata"]["uid"] = "fd-uid"
    new = copy.deepcopy(old)
    new["spec"]["flinkConfiguration"] = {"jobmanager.memory.heap.size": "2g"}
    for _ in range(3):
        response = answer(direct, VALIDATE_ID, review(FD, new, "UPDATE", old))
        assert response["allowed"] is False
    assert [(t, r) for t, r, _ in cluster.events] == [("Warning", "MemoryRefused")]


def test_other_resources_are_left_to_kopf() -> None:
    direct, _ = make()
    other = {"group": "example.com", "version": "v1", "resource": "flinkdeployments"}
    assert asyncio.run(direct(VALIDATE_ID, review(other, flinkdeployment()))) is None
    assert asyncio.run(direct("something-else", review(FD, flinkdeployment()))) is None


def test_a_pod_patch_built_from_the_plan_equals_kopfs_diff_of_the_planned_pod() -> None:
    deployment = flinkdeployment(memory="2g")
    direct, cluster = make(deployment)
    pod = jobmanager_pod()
    pod["metadata"]["annotations"] = {"kept": "yes", "flinkmem.io/jvm-flags": "old"}
    response = answer(direct, MUTATE_ID, review(PODS, pod))
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    patched = jsonpatch.apply_patch(pod, ops)
    main = patched["spec"]["containers"][-1]
    assert main["resources"] == {"requests": {"memory": "2048Mi"}, "limits": {"memory": "2048Mi"}}
    assert {e["name"]: e["value"] for e in main["env"]}["FLINK_ENV_JAVA_OPTS_JM"] == C02_FLAGS
    assert patched["metadata"]["annotations"]["kept"] == "yes"
    assert patched["metadata"]["annotations"]["flinkmem.io/jvm-flags"] == C02_FLAGS
    # The same pod kopf's engine would produce (apply the plan to a copy, diff): byte for byte.
    expected = copy.deepcopy(pod)

    validation = validate_deployment(deployment)
    assert validation.source is not None and validation.jobmanager is not None
    plan = plan_pod(pod, validation.jobmanager, validation.source, "flink-main-container")
    assert plan is not None and main_container(pod, "flink-main-container") is not None
    apply_plan(expected, plan)
    assert patched == expected
    assert 'flinkmem_resolutions_total{result="valid",source="pod"} 1.0' in cluster.metrics.exposition().decode()


def test_a_pod_without_a_source_is_admitted_unchanged_with_an_event() -> None:
    direct, cluster = make(None)
    pod = jobmanager_pod()
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}]
    response = answer(direct, MUTATE_ID, review(PODS, pod))
    assert response["allowed"] is True and "patch" not in response
    assert "left this JobManager pod unchanged" in response["warnings"][0]
    assert [r for _, r, _ in cluster.events] == ["MemoryNotApplied"]


def test_pods_that_are_not_flink_pods_and_other_operations_pass_untouched() -> None:
    direct, _ = make(flinkdeployment(memory="2g"))
    pod = jobmanager_pod()
    pod["metadata"]["labels"] = {"app": "web"}
    assert answer(direct, MUTATE_ID, review(PODS, pod)) == {"uid": "u-1", "allowed": True}
    assert answer(direct, MUTATE_ID, review(PODS, jobmanager_pod(), "UPDATE")) == {"uid": "u-1", "allowed": True}
