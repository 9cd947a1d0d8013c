"""FlinkBlueGreenDeployments: the child the operator deploys from one, its template checked by the
FlinkDeployment rules with its own names, through the admission service (both transports), the
controller and the settings.

What the operator makes of a blue/green deployment is from its source (release-1.15.0, unchanged on
main): `BlueGreenUtils.prepareFlinkDeployment` and `BlueGreenKubernetesService.getDependentObjectMeta`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
from typing import Any

import pytest

from flinkmem.conventions import RESOLVED_ANNOTATION, VALIDATE_BLUEGREEN_ID, VALIDATE_ID
from flinkmem.decisions.bluegreen import BLUEGREEN, validate_bluegreen
from flinkmem.decisions.deployment import Outcome, review_flinkdeployment
from flinkmem.decisions.policy import ValidationMode
from flinkmem.decisions.redaction import MESSAGE_LIMIT
from flinkmem.decisions.validation import validate_deployment
from flinkmem.runtime.settings import DEFAULT_BLUEGREEN_RESOURCE, Settings, add_arguments, from_arguments
from flinkmem.runtime.webhookconfig import validating_configuration
from flinkmem.sources.bluegreen import child_deployment
from tests.support.budget import cpu_deadline
from tests.unit.admission_harness import FD, Harness, review
from tests.unit.fixtures import flinkdeployment
from tests.unit.test_controller import make, run

BG = {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkbluegreendeployments"}
CONTAINER = "flink-main-container"
ENFORCE, WARN, AUDIT = ValidationMode.ENFORCE, ValidationMode.WARN, ValidationMode.AUDIT
JM_CONFLICT = {"jobmanager.memory.heap.size": "2g"}  # with JobManager memory 1g
TM_CONFLICT = {"taskmanager.memory.managed.size": "4g"}  # with TaskManager memory 1728m


def bluegreen(config: dict[str, Any] | None = None, memory: str = "1600m", uid: str | None = None) -> dict[str, Any]:
    template = flinkdeployment(config, memory=memory)["spec"]
    metadata: dict[str, Any] = {"name": "orders", "namespace": "jobs"}
    if uid:
        metadata["uid"] = uid
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkBlueGreenDeployment",
        "metadata": metadata,
        "spec": {
            "configuration": {"kubernetes.operator.bluegreen.deployment-deletion.delay": "1s"},
            "template": {"metadata": {"labels": {"team": "data"}}, "spec": template},
        },
    }


# --- the child ------------------------------------------------------------------------------------


def test_the_child_is_the_template_spec_named_blue_with_the_label_and_one_owner() -> None:
    parent = bluegreen(uid="bg-uid")
    child = child_deployment(parent)
    assert child["spec"] is parent["spec"]["template"]["spec"]
    assert child["metadata"] == {
        "name": "orders-blue",
        "namespace": "jobs",
        "labels": {"flink/blue-green-deployment-type": "BLUE"},  # exactly this label: template labels do not reach it
        "ownerReferences": [
            {
                "apiVersion": "flink.apache.org/v1beta1",
                "kind": "FlinkBlueGreenDeployment",
                "name": "orders",
                "uid": "bg-uid",
                "blockOwnerDeletion": True,
                "controller": False,
            }
        ],
    }
    assert child_deployment(parent, "green")["metadata"]["labels"] == {"flink/blue-green-deployment-type": "GREEN"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (None, "spec"),
        ({}, "spec.template"),
        ({"template": {}}, "spec.template.spec"),
        ({"template": []}, "spec.template"),
    ],
)
def test_no_template_spec_is_refused_naming_the_field(spec: Any, field: str) -> None:
    obj = bluegreen()
    obj["spec"] = spec
    validation = validate_bluegreen(obj, CONTAINER)
    assert [c.fields for c in validation.conflicts] == [(field,)]


# --- the decision ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "memory", "option"),
    [(JM_CONFLICT, "1g", "JobManager: jobmanager.memory.process.size"), (TM_CONFLICT, "1600m", "TaskManager: ")],
)
def test_a_conflict_in_the_template_is_refused_naming_the_deployment_and_the_option(
    config: dict[str, str], memory: str, option: str
) -> None:
    decision = review_flinkdeployment("CREATE", bluegreen(config, memory), None, ENFORCE, CONTAINER, subject=BLUEGREEN)
    assert not decision.allowed and decision.code == 422
    assert decision.message.startswith(
        "flinkmem refused FlinkBlueGreenDeployment jobs/orders (its spec.template.spec, which the operator deploys "
        "as FlinkDeployment orders-blue): "
    )
    assert option in decision.message and "Fix:" in decision.message


def test_the_template_is_checked_by_exactly_the_flinkdeployment_rules() -> None:
    """One rule, implemented once: the template gives the findings its child FlinkDeployment gives."""
    for config, memory in (
        ({}, "2g"),
        (JM_CONFLICT, "1g"),
        (TM_CONFLICT, "1600m"),
        ({"jobmanager.memory.heap.size": "1m"}, "2g"),
    ):
        parent = bluegreen(config, memory)
        ours, theirs = validate_bluegreen(parent, CONTAINER), validate_deployment(child_deployment(parent), CONTAINER)
        assert ours.to_dict() == theirs.to_dict()


def test_paths_of_the_template_are_named_where_the_user_wrote_them() -> None:
    obj = bluegreen(memory="1.5g")
    decision = review_flinkdeployment("CREATE", obj, None, ENFORCE, CONTAINER, subject=BLUEGREEN)
    assert "spec.template.spec.jobManager.resource.memory: '1.5g'" in decision.message
    obj = bluegreen()
    obj["spec"]["template"]["spec"]["flinkConfiguration"] = {"a": {"b": None}}
    assert validate_bluegreen(obj, CONTAINER).conflicts[0].fields == ("spec.template.spec.flinkConfiguration.a.b",)


def test_modes_and_updates_follow_the_flinkdeployment_rules() -> None:
    conflict, valid = bluegreen(JM_CONFLICT, "1g"), bluegreen()
    warned = review_flinkdeployment("CREATE", conflict, None, WARN, CONTAINER, subject=BLUEGREEN)
    assert warned.allowed and warned.outcome is Outcome.WARNED and any("warn mode" in w for w in warned.warnings)
    audited = review_flinkdeployment("CREATE", conflict, None, AUDIT, CONTAINER, subject=BLUEGREEN)
    assert audited.allowed and audited.outcome is Outcome.AUDITED
    assert not review_flinkdeployment("UPDATE", conflict, valid, ENFORCE, CONTAINER, subject=BLUEGREEN).allowed
    # The operator's own bookkeeping and metadata leave an old conflict as it was.
    relabelled = copy.deepcopy(conflict)
    relabelled["metadata"]["labels"] = {"a": "b"}
    relabelled["spec"]["configuration"] = {"kubernetes.operator.bluegreen.abort.grace-period": "5m"}
    relabelled["spec"]["template"]["metadata"] = {"annotations": {"x": "y"}}
    kept = review_flinkdeployment("UPDATE", relabelled, conflict, ENFORCE, CONTAINER, subject=BLUEGREEN)
    assert kept.allowed and kept.outcome is Outcome.EXISTING_CONFLICT


def test_flinkmem_never_changes_a_template() -> None:
    old, new = bluegreen(), bluegreen(memory="2g")
    own = "system:serviceaccount:flinkmem:flinkmem"
    decision = review_flinkdeployment(
        "UPDATE", new, old, ENFORCE, CONTAINER, actor=own, own_identity=own, subject=BLUEGREEN
    )
    assert not decision.allowed and decision.outcome is Outcome.DENIED_SELF


# --- the admission service -----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["direct", "kopf"])
def test_both_transports_answer_blue_green_reviews_alike(engine: str) -> None:
    h = Harness()
    assert h.response(VALIDATE_BLUEGREEN_ID, review(BG, bluegreen(memory="2g")), engine)["allowed"] is True
    refused = h.response(VALIDATE_BLUEGREEN_ID, review(BG, bluegreen(JM_CONFLICT, "1g")), engine)
    assert refused["allowed"] is False and refused["status"]["code"] == 422
    assert "FlinkBlueGreenDeployment jobs/orders" in refused["status"]["message"]
    assert h.resolutions() == [
        'flinkmem_resolutions_total{result="process-below-flink-plus-metaspace",source="webhook"} 1.0',
        'flinkmem_resolutions_total{result="valid",source="webhook"} 1.0',
    ]
    # A refused UPDATE of an existing one is an Event on it, as for a FlinkDeployment.
    h = Harness()
    old, new = bluegreen(memory="2g", uid="bg-uid"), bluegreen(JM_CONFLICT, "1g", uid="bg-uid")
    assert h.response(VALIDATE_BLUEGREEN_ID, review(BG, new, "UPDATE", old), engine)["allowed"] is False
    assert [(name, reason) for name, _, reason, _ in h.sink.posted] == [("orders", "MemoryRefused")]


def test_each_validating_webhook_takes_only_its_resource() -> None:
    h = Harness()
    status, answer, _ = h.post(VALIDATE_BLUEGREEN_ID, review(FD, flinkdeployment()))
    assert status == 400 and "validate-flinkbluegreendeployment reviews flinkbluegreendeployments" in answer["error"]
    status, _, _ = h.post(VALIDATE_ID, review(BG, bluegreen()))
    assert status == 400
    off = Harness(settings=Settings(bluegreen_resource=None))
    status, answer, _ = off.post(VALIDATE_BLUEGREEN_ID, review(BG, bluegreen()))
    assert status == 404 and "flinkmem serves validate-flinkdeployment, mutate-flink-pod" in answer["error"]


def test_a_malformed_blue_green_deployment_is_refused_not_crashed() -> None:
    h = Harness()
    specs: list[Any] = [None, [], {"template": "x"}, {"template": {"spec": {"jobManager": []}}}]
    for spec in specs:
        obj = bluegreen()
        obj["spec"] = spec
        answer = h.response(VALIDATE_BLUEGREEN_ID, review(BG, obj))
        assert answer["allowed"] is False and answer["status"]["code"] == 422, answer


# --- the controller ----------------------------------------------------------------------------------


def test_the_controller_annotates_a_blue_green_deployment_with_an_event() -> None:
    controller, sink = make()
    obj = bluegreen(memory="2g", uid="bg-uid")
    annotation = run(controller, controller.on_bluegreen("ADDED", obj))
    assert annotation is not None
    assert json.loads(annotation) == json.loads(json.dumps(validate_bluegreen(obj, CONTAINER).to_dict()))
    assert [(name, reason) for name, _, reason, _ in sink.posted] == [("orders", "MemoryResolved")]
    annotated = copy.deepcopy(obj)
    annotated["metadata"]["annotations"] = {RESOLVED_ANNOTATION: annotation}
    assert run(controller, controller.on_bluegreen("MODIFIED", annotated)) is None
    conflict = bluegreen(JM_CONFLICT, "1g", uid="bg-uid")
    assert run(controller, controller.on_bluegreen("MODIFIED", conflict)) is not None
    assert [(reason, kind) for _, kind, reason, _ in sink.posted][-1] == ("MemoryConflict", "Warning")
    assert run(controller, controller.on_bluegreen("DELETED", conflict)) is None
    # Its pods are its children's: nothing of the blue/green deployment is cached as a pod source.
    assert controller.cache.deployments == {}


def test_out_of_scope_blue_green_deployments_are_left_alone() -> None:
    controller, sink = make(Settings(namespaces=("elsewhere",), controller_qps=0))
    assert run(controller, controller.on_bluegreen("ADDED", bluegreen())) is None
    assert sink.posted == []


# --- settings and registration ----------------------------------------------------------------------


def _settings(*argv: str) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_arguments(parser.parse_args(["--self-signed-dir", "/tmp/x", *argv]))


def test_the_blue_green_resource_is_on_by_default_and_can_be_renamed_or_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLINKMEM_BLUEGREEN_RESOURCE", raising=False)
    assert _settings().bluegreen_resource == DEFAULT_BLUEGREEN_RESOURCE
    assert _settings("--bluegreen-resource", "none").bluegreen_resource is None
    assert str(_settings("--bluegreen-resource", "bgs.v1.example.com").bluegreen_resource) == "bgs.v1.example.com"
    monkeypatch.setenv("FLINKMEM_BLUEGREEN_RESOURCE", "")
    assert _settings().bluegreen_resource is None
    with pytest.raises(ValueError, match="is the FlinkDeployment resource"):
        _settings("--bluegreen-resource", "flinkdeployments.v1beta1.flink.apache.org")


def test_the_blue_green_webhook_is_registered_only_when_enabled() -> None:
    settings = Settings()
    with_bg = validating_configuration(settings.resource, "https://x", "ca", bluegreen=DEFAULT_BLUEGREEN_RESOURCE)
    assert [w["name"] for w in with_bg["webhooks"]] == [
        "validate-flinkdeployment.flinkmem.io",
        "validate-flinkbluegreendeployment.flinkmem.io",
    ]
    assert with_bg["webhooks"][1]["rules"][0]["resources"] == ["flinkbluegreendeployments"]
    assert with_bg["webhooks"][1]["clientConfig"]["url"] == "https://x/validate-flinkbluegreendeployment"
    without = validating_configuration(settings.resource, "https://x", "ca")
    assert [w["name"] for w in without["webhooks"]] == ["validate-flinkdeployment.flinkmem.io"]


def test_kopfs_engine_knows_the_blue_green_resource() -> None:
    h = Harness()
    assert asyncio.run(h.apost(VALIDATE_BLUEGREEN_ID, review(BG, bluegreen()), "kopf"))[0] == 200


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"v": "1"}
    for _ in range(depth):
        node = {"k": node}
    return node


@pytest.mark.parametrize(
    ("name", "config", "resources", "expect"),
    [
        ("100,000 other keys", {f"pipeline.k{i}": "v" * 8 for i in range(100_000)}, None, None),
        ("nested 900 deep", _nested(900), None, "spec.template.spec.flinkConfiguration.k.k"),
        (
            "a quantity of 100,000 digits",
            {},
            {"requests": {"memory": "9" * 100_000 + "Mi"}},
            "resources.requests.memory",
        ),
    ],
)
def test_hostile_templates_are_answered_in_bounded_time(
    name: str, config: dict[str, Any], resources: dict[str, Any] | None, expect: str | None
) -> None:
    obj = bluegreen(memory="2g")
    obj["spec"]["template"]["spec"]["flinkConfiguration"] = config
    if resources is not None:
        obj["spec"]["template"]["spec"]["jobManager"] = {"resources": resources}
    h = Harness()
    with cpu_deadline(name):
        answer = h.response(VALIDATE_BLUEGREEN_ID, review(BG, obj))
    if expect is None:
        assert answer["allowed"] is True
    else:
        assert answer["allowed"] is False and expect in answer["status"]["message"]
        assert len(answer["status"]["message"]) <= MESSAGE_LIMIT
