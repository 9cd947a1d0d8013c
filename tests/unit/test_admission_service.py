"""The admission service through the default (direct) transport: answers, refusals counted and told once,
Events, the screen before any transport, and the failure rules (FlinkDeployments closed, pods open)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any, cast

import jsonpatch
import pytest

from flinkmem.conventions import MUTATE_ID, RECORD_ID, RESOLVED_ANNOTATION, SIZED_LABEL, VALIDATE_ID
from flinkmem.decisions.podplan import apply_plan, plan_pod
from flinkmem.decisions.policy import ValidationMode
from flinkmem.decisions.reconcile import reconcile_deployment
from flinkmem.decisions.validation import validate_deployment
from flinkmem.runtime.cluster import OwnerLookupError
from flinkmem.runtime.settings import Settings
from tests.unit.admission_harness import FD, PODS, Harness, Lookup, review
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

C02_FLAGS = "-Xmx1530082096 -Xms1530082096 -XX:MaxMetaspaceSize=268435456"
CONFLICT = {"jobmanager.memory.heap.size": "2g"}


def test_a_valid_flinkdeployment_is_allowed_and_a_conflict_refused_with_its_reason() -> None:
    h = Harness()
    assert h.response(VALIDATE_ID, review(FD, flinkdeployment(memory="2g"))) == {"uid": "u-1", "allowed": True}
    refused = h.response(VALIDATE_ID, review(FD, flinkdeployment(CONFLICT, memory="1g")))
    assert refused["allowed"] is False and refused["status"]["code"] == 422
    assert "JobManager: jobmanager.memory.process.size (1 GiB)" in refused["status"]["message"]
    assert h.sink.posted == []  # a refused CREATE has no object to post an Event about
    assert h.resolutions() == [
        'flinkmem_resolutions_total{result="process-below-flink-plus-metaspace",source="webhook"} 1.0',
        'flinkmem_resolutions_total{result="valid",source="webhook"} 1.0',
    ]


def test_repeated_refusals_are_logged_once_and_an_existing_object_gets_one_event_per_interval() -> None:
    h = Harness()
    old = flinkdeployment(memory="2g")
    old["metadata"]["uid"] = "fd-uid"
    new = copy.deepcopy(old)
    new["spec"]["flinkConfiguration"] = CONFLICT
    new["spec"]["jobManager"]["resource"]["memory"] = "1g"
    for _ in range(3):
        assert h.response(VALIDATE_ID, review(FD, new, "UPDATE", old))["allowed"] is False
    assert [(reason, kind) for _, kind, reason, _ in h.sink.posted] == [("MemoryRefused", "Warning")]
    assert len(h.log.lines) == 1 and h.log.lines[0].startswith("flinkmem refused FlinkDeployment jobs/demo")


def test_a_dry_run_refusal_posts_no_event() -> None:
    h = Harness()
    old = flinkdeployment(memory="2g")
    old["metadata"]["uid"] = "fd-uid"
    new = flinkdeployment(CONFLICT, memory="1g")
    new["metadata"]["uid"] = "fd-uid"
    assert h.response(VALIDATE_ID, review(FD, new, "UPDATE", old, dryRun=True))["allowed"] is False
    assert h.sink.posted == []


def test_warn_and_audit_admit_conflicts_and_log_them_once() -> None:
    for mode, warned in (("warn", True), ("audit", False)):
        h = Harness(settings=Settings(validation_mode=ValidationMode(mode)))
        for _ in range(2):
            answer = h.response(VALIDATE_ID, review(FD, flinkdeployment(CONFLICT, memory="1g")))
            assert answer["allowed"] is True
            assert any("warn mode" in w for w in answer.get("warnings", [])) is warned
        assert len(h.log.lines) == 1 and h.log.lines[0].startswith(f"{mode}ed FlinkDeployment demo")


def test_namespaces_out_of_scope_are_admitted_untouched() -> None:
    h = Harness(Lookup(flinkdeployment(memory="2g")), Settings(namespaces=("other",)))
    assert h.response(VALIDATE_ID, review(FD, flinkdeployment(CONFLICT, memory="1g"))) == {
        "uid": "u-1",
        "allowed": True,
    }
    assert h.response(MUTATE_ID, review(PODS, jobmanager_pod())) == {"uid": "u-1", "allowed": True}
    assert h.resolutions() == []


def test_the_screen_refuses_what_no_webhook_reviews_before_any_transport() -> None:
    h = Harness()
    other = {"group": "example.com", "version": "v1", "resource": "flinkdeployments"}
    for engine in ("direct", "kopf"):
        status, body, decision = h.post(VALIDATE_ID, review(other, flinkdeployment()), engine)
        assert (status, decision) == (400, "bad-request") and "reviews flinkdeployments.v1beta1" in body["error"]
        status, body, decision = h.post(MUTATE_ID, review(FD, flinkdeployment()), engine)
        assert (status, decision) == (400, "bad-request")
        status, body, decision = h.post("something-else", review(FD, flinkdeployment()), engine)
        assert (status, decision) == (404, "unknown-webhook")


def test_mistyped_metadata_is_refused_for_flinkdeployments_and_admitted_for_pods() -> None:
    h = Harness()
    bad = flinkdeployment()
    bad["metadata"]["labels"] = {"a": 1}
    refused = h.response(VALIDATE_ID, review(FD, bad))
    assert refused["allowed"] is False and refused["status"]["code"] == 422
    assert refused["status"]["message"] == "flinkmem refused this object: object.metadata.labels['a'] must be a string."
    pod = jobmanager_pod()
    pod["metadata"]["annotations"] = None
    admitted = h.response(MUTATE_ID, review(PODS, pod))
    assert admitted["allowed"] is True and "pod left unchanged" in admitted["warnings"][0]


def test_a_pod_patch_built_from_the_plan_equals_the_planned_pod() -> None:
    deployment = flinkdeployment({"env.java.opts.jobmanager": "-Xmx4g"}, memory="2g")
    h = Harness(Lookup(deployment))
    pod = jobmanager_pod()
    pod["metadata"]["annotations"] = {"kept": "yes", "flinkmem.io/jvm-flags": "old"}
    response = h.response(MUTATE_ID, review(PODS, pod))
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    main = patched["spec"]["containers"][-1]
    assert main["resources"] == {"requests": {"memory": "2048Mi"}, "limits": {"memory": "2048Mi"}}
    assert {e["name"]: e["value"] for e in main["env"]}["FLINK_ENV_JAVA_OPTS_JM"] == C02_FLAGS
    assert patched["metadata"]["annotations"]["kept"] == "yes"
    assert patched["metadata"]["annotations"]["flinkmem.io/jvm-flags"] == C02_FLAGS
    expected = copy.deepcopy(pod)
    validation = validate_deployment(deployment)
    assert validation.source is not None and validation.jobmanager is not None
    plan = plan_pod(pod, 1, validation.jobmanager, validation.source)
    assert plan is not None
    apply_plan(expected, plan)
    assert patched == expected
    assert h.resolutions() == ['flinkmem_resolutions_total{result="java-opts-heap-conflict",source="pod"} 1.0']


def test_a_pod_without_a_source_is_admitted_unchanged_with_an_event_on_its_owner() -> None:
    h = Harness(Lookup(None))
    pod = jobmanager_pod()
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}]
    response = h.response(MUTATE_ID, review(PODS, pod))
    assert response["allowed"] is True and "patch" not in response
    assert "left this JobManager pod unchanged" in response["warnings"][0]
    assert [(name, reason) for name, _, reason, _ in h.sink.posted] == [("rs", "MemoryNotApplied")]
    # A sized label it carries (copied from a sized pod) goes, so that the controller's watch sees it.
    pod["metadata"]["labels"][SIZED_LABEL] = "0123456789abcdef0123"
    response = h.response(MUTATE_ID, review(PODS, pod))
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    assert SIZED_LABEL not in patched["metadata"]["labels"]
    assert patched["spec"] == pod["spec"] and patched["metadata"]["labels"]["component"] == "jobmanager"


def test_a_pod_whose_source_cannot_be_read_is_admitted_unchanged() -> None:
    h = Harness(Lookup(fail=OwnerLookupError("reading flinkdeployments jobs/demo failed: HTTP 500")))
    response = h.response(MUTATE_ID, review(PODS, jobmanager_pod()))
    assert response["allowed"] is True and "patch" not in response
    assert "HTTP 500" in " ".join(response["warnings"])


def test_an_unexpected_failure_fails_open_for_pods_and_closed_for_flinkdeployments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness(Lookup(fail=ZeroDivisionError("boom")))
    pod_answer = h.response(MUTATE_ID, review(PODS, jobmanager_pod()))
    assert pod_answer == {
        "uid": "u-1",
        "allowed": True,
        "warnings": ["flinkmem: pod left unchanged: internal error ZeroDivisionError (see flinkmem logs)"],
    }

    def explode(*_: Any, **__: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("flinkmem.runtime.admission.service.review_flinkdeployment", explode)
    answer = h.response(VALIDATE_ID, review(FD, flinkdeployment()))
    assert answer["allowed"] is False and answer["status"]["code"] == 500
    assert answer["status"]["message"].startswith("flinkmem failed: internal error ZeroDivisionError")


def test_pods_that_are_not_flink_pods_and_other_operations_pass_untouched() -> None:
    h = Harness(Lookup(flinkdeployment(memory="2g")))
    pod = jobmanager_pod()
    pod["metadata"]["labels"] = {"app": "web"}
    assert h.response(MUTATE_ID, review(PODS, pod)) == {"uid": "u-1", "allowed": True}
    assert h.response(MUTATE_ID, review(PODS, jobmanager_pod(), "UPDATE")) == {"uid": "u-1", "allowed": True}


def test_a_review_whose_object_claims_another_namespace_is_not_looked_up() -> None:
    lookup = Lookup(flinkdeployment({"env.java.opts.jobmanager": "-Xmx4g -Dpassword=x"}, memory="2g"))
    h = Harness(lookup)
    pod = jobmanager_pod()
    pod["metadata"]["namespace"] = "victim"  # the review itself says "jobs"
    answer = h.response(MUTATE_ID, review(PODS, pod))
    assert answer["allowed"] is True and "patch" not in answer
    assert "is not the namespace of the request" in answer["warnings"][0]
    refused = h.response(VALIDATE_ID, review(FD, {**flinkdeployment(), "metadata": {"name": "x", "namespace": "b"}}))
    assert refused["allowed"] is False and refused["status"]["code"] == 422


@pytest.mark.parametrize("namespace", ["../kube-system", "a/b", "x?watch=1", "A", "a" * 64])
def test_a_namespace_the_api_server_never_sends_is_refused_before_any_lookup(namespace: str) -> None:
    h = Harness(Lookup(fail=AssertionError("looked up")))
    pod = jobmanager_pod()
    del pod["metadata"]["namespace"]
    answer = h.response(MUTATE_ID, review(PODS, pod, namespace=namespace))
    assert answer["allowed"] is True and "not a valid namespace name" in answer["warnings"][0]


@pytest.mark.parametrize("app", ["../../secrets", "a/b", "x?y", "UPPER", "a" * 300])
def test_an_app_label_that_is_no_object_name_names_no_cluster(app: str) -> None:
    h = Harness(Lookup(fail=AssertionError("looked up")))
    pod = jobmanager_pod()
    pod["metadata"]["labels"]["app"] = app
    answer = h.response(MUTATE_ID, review(PODS, pod))
    assert answer["allowed"] is True and "not a valid Kubernetes name" in " ".join(answer["warnings"])


def test_excluded_namespaces_are_admitted_untouched_by_both_webhooks() -> None:
    h = Harness(Lookup(flinkdeployment(memory="2g")), Settings(excluded_namespaces=("jobs",)))
    assert h.response(VALIDATE_ID, review(FD, flinkdeployment(CONFLICT, memory="1g"))) == {
        "uid": "u-1",
        "allowed": True,
    }
    assert h.response(MUTATE_ID, review(PODS, jobmanager_pod())) == {"uid": "u-1", "allowed": True}


def _recorded_fd(**kwargs: Any) -> dict[str, Any]:
    """A FlinkDeployment as the API server hands it to the validating webhook after the record webhook."""
    h = Harness()
    obj = flinkdeployment(**kwargs)
    payload = h.response(RECORD_ID, review(FD, obj))
    patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(payload["patch"])))
    patched["metadata"]["uid"] = "fd-uid"
    return cast(dict[str, Any], patched)


def test_the_record_webhook_writes_what_the_controller_would_and_nothing_when_it_is_there() -> None:
    h = Harness()
    obj = flinkdeployment(memory="2g")
    payload = h.response(RECORD_ID, review(FD, obj))
    assert payload["allowed"] is True and payload["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(payload["patch"])))
    expected = reconcile_deployment(obj, "flink-main-container")
    assert patched["metadata"]["annotations"] == {RESOLVED_ANNOTATION: expected.annotation}
    assert patched["spec"] == obj["spec"]
    # Recorded already: nothing to patch, and the controller finds nothing to write either.
    again = h.response(RECORD_ID, review(FD, patched))
    assert "patch" not in again and again["allowed"] is True
    assert not reconcile_deployment(patched, "flink-main-container").changed
    # The record never refuses and never warns (the validating webhook does), even for a conflict.
    conflict = h.response(RECORD_ID, review(FD, flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g")))
    assert conflict["allowed"] is True and "warnings" not in conflict and "patch" in conflict
    assert h.sink.posted == [] and h.resolutions() == []


def test_the_validating_webhook_tells_a_recorded_create_once_with_the_controllers_event() -> None:
    h = Harness()
    created = _recorded_fd(memory="2g")
    h.response(VALIDATE_ID, review(FD, created))
    expected = reconcile_deployment(flinkdeployment(memory="2g"), "flink-main-container")
    assert h.sink.posted == [("demo", "Normal", "MemoryResolved", expected.message)]
    # An update that leaves the record as it was tells nothing; one that changes it, the new record.
    h.response(VALIDATE_ID, review(FD, created, "UPDATE", created))
    assert len(h.sink.posted) == 1
    bigger = _recorded_fd(memory="3g")
    h.response(VALIDATE_ID, review(FD, bigger, "UPDATE", created))
    assert [reason for _, _, reason, _ in h.sink.posted] == ["MemoryResolved", "MemoryResolved"]
    assert "total process 3 GiB" in h.sink.posted[1][3]


def test_no_event_for_a_dry_run_an_unrecorded_object_or_a_refusal() -> None:
    h = Harness()
    h.response(VALIDATE_ID, review(FD, _recorded_fd(memory="2g"), dryRun=True))
    # Without the record (the record webhook did not answer): the controller writes it and tells.
    unrecorded = flinkdeployment(memory="2g")
    unrecorded["metadata"]["uid"] = "fd-uid"
    h.response(VALIDATE_ID, review(FD, unrecorded))
    refused = h.response(
        VALIDATE_ID, review(FD, _recorded_fd(config={"jobmanager.memory.heap.size": "2g"}, memory="1g"))
    )
    assert refused["allowed"] is False
    assert h.sink.posted == []


def test_the_record_webhook_admits_unchanged_when_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import flinkmem.runtime.admission.service as service

    def broken(obj: Any, container: str) -> Any:
        raise KeyError("x")

    monkeypatch.setattr(service, "validate_deployment", broken)
    payload = Harness().response(RECORD_ID, review(FD, flinkdeployment()))
    assert payload["allowed"] is True and "patch" not in payload and "warnings" not in payload
