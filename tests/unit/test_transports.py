"""The same reviews through both transports (the direct answer and kopf's admission engine) give the
same answers, the same metrics, the same Events and the same log lines: admission lives once, in the
service, and the transports only translate it."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import jsonpatch
import pytest

from flinkmem.conventions import MUTATE_ID, RECORD_ID, RESOLVED_ANNOTATION, VALIDATE_ID
from flinkmem.decisions.annotations import memory_annotation
from flinkmem.decisions.policy import ValidationMode
from flinkmem.decisions.validation import validate_deployment
from flinkmem.runtime.cluster import OwnerLookupError
from flinkmem.runtime.settings import Settings
from tests.unit.admission_harness import FD, PODS, Harness, Lookup, review
from tests.unit.fixtures import container_template, flinkdeployment, jobmanager_pod

CONFLICT = {"jobmanager.memory.heap.size": "2g"}
OWN = "system:serviceaccount:flinkmem:flinkmem"


def _existing(config: dict[str, Any] | None = None, memory: str = "2g") -> dict[str, Any]:
    obj = flinkdeployment(config, memory=memory)
    obj["metadata"]["uid"] = "fd-uid"
    return obj


def _owned_pod(**labels: str) -> dict[str, Any]:
    pod = jobmanager_pod()
    pod["metadata"]["labels"].update(labels)
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}]
    return pod


def _xmx_deployment() -> dict[str, Any]:
    return flinkdeployment({"env.java.opts.jobmanager": "-Xmx4g -XX:+UseG1GC"}, memory="2g")


def _recorded(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as the record webhook leaves it: carrying its resolved-memory annotation."""
    recorded = copy.deepcopy(obj)
    annotation = memory_annotation(validate_deployment(obj, "flink-main-container"))
    recorded["metadata"].setdefault("annotations", {})[RESOLVED_ANNOTATION] = annotation
    return recorded


def _mistyped_pod() -> dict[str, Any]:
    pod = _owned_pod()
    pod["spec"]["containers"][-1]["env"] = {"A": "b"}
    return pod


# (name, lookup, settings, webhook, review bytes)
Case = tuple[str, Callable[[], Lookup], Settings, str, bytes]
DEFAULT = Settings()
CASES: list[Case] = [
    ("valid", Lookup, DEFAULT, VALIDATE_ID, review(FD, flinkdeployment(memory="2g"))),
    ("refused create", Lookup, DEFAULT, VALIDATE_ID, review(FD, flinkdeployment(CONFLICT, memory="1g"))),
    (
        "refused update",
        Lookup,
        DEFAULT,
        VALIDATE_ID,
        review(FD, _existing(CONFLICT, "1g"), "UPDATE", _existing()),
    ),
    (
        "old conflict kept",
        Lookup,
        DEFAULT,
        VALIDATE_ID,
        review(FD, _existing(CONFLICT, "1g"), "UPDATE", _existing(CONFLICT, "1g")),
    ),
    (
        "own spec write",
        Lookup,
        Settings(service_account=OWN),
        VALIDATE_ID,
        review(FD, _existing(memory="3g"), "UPDATE", _existing(), userInfo={"username": OWN}),
    ),
    (
        "warn",
        Lookup,
        Settings(validation_mode=ValidationMode.WARN),
        VALIDATE_ID,
        review(FD, flinkdeployment(CONFLICT, memory="1g")),
    ),
    (
        "audit",
        Lookup,
        Settings(validation_mode=ValidationMode.AUDIT),
        VALIDATE_ID,
        review(FD, _existing(CONFLICT, "1g"), "UPDATE", _existing()),
    ),
    ("malformed spec", Lookup, DEFAULT, VALIDATE_ID, review(FD, {**flinkdeployment(), "spec": []})),
    (
        "template warning",
        Lookup,
        DEFAULT,
        VALIDATE_ID,
        review(FD, flinkdeployment(memory="2g", jm_template=container_template(limit="1Gi"))),
    ),
    ("out of scope", Lookup, Settings(namespaces=("elsewhere",)), VALIDATE_ID, review(FD, flinkdeployment(CONFLICT))),
    (
        "mistyped metadata",
        Lookup,
        DEFAULT,
        VALIDATE_ID,
        review(FD, {**flinkdeployment(), "metadata": {"name": 3}}),
    ),
    ("record create", Lookup, DEFAULT, RECORD_ID, review(FD, flinkdeployment(memory="2g"))),
    (
        "record next to other annotations",
        Lookup,
        DEFAULT,
        RECORD_ID,
        review(FD, {**flinkdeployment(), "metadata": {"name": "demo", "annotations": {"team": "a/b"}}}),
    ),
    ("record of a conflict", Lookup, DEFAULT, RECORD_ID, review(FD, flinkdeployment(CONFLICT, memory="1g"))),
    ("already recorded", Lookup, DEFAULT, RECORD_ID, review(FD, _recorded(flinkdeployment(memory="2g")))),
    (
        "record update",
        Lookup,
        DEFAULT,
        RECORD_ID,
        review(FD, _existing(memory="3g"), "UPDATE", _recorded(_existing())),
    ),
    ("record out of scope", Lookup, Settings(namespaces=("elsewhere",)), RECORD_ID, review(FD, flinkdeployment())),
    ("recorded create", Lookup, DEFAULT, VALIDATE_ID, review(FD, _recorded(_existing()))),
    ("recorded dry run", Lookup, DEFAULT, VALIDATE_ID, review(FD, _recorded(_existing()), dryRun=True)),
    (
        "recorded update",
        Lookup,
        DEFAULT,
        VALIDATE_ID,
        review(FD, _recorded(_existing(memory="3g")), "UPDATE", _recorded(_existing())),
    ),
    (
        "recorded as before",
        Lookup,
        DEFAULT,
        VALIDATE_ID,
        review(FD, _recorded(_existing()), "UPDATE", _recorded(_existing())),
    ),
    (
        "recorded conflict, warn",
        Lookup,
        Settings(validation_mode=ValidationMode.WARN),
        VALIDATE_ID,
        review(FD, _recorded(_existing(CONFLICT, "1g"))),
    ),
    ("pod sized", lambda: Lookup(flinkdeployment(memory="2g")), DEFAULT, MUTATE_ID, review(PODS, _owned_pod())),
    ("pod with -Xmx", lambda: Lookup(_xmx_deployment()), DEFAULT, MUTATE_ID, review(PODS, _owned_pod())),
    ("pod without source", Lookup, DEFAULT, MUTATE_ID, review(PODS, _owned_pod())),
    (
        "pod without source, with a copied sized label",
        Lookup,
        DEFAULT,
        MUTATE_ID,
        review(PODS, _owned_pod(**{"flinkmem.io/sized": "0123456789abcdef0123"})),
    ),
    ("pod dry run", Lookup, DEFAULT, MUTATE_ID, review(PODS, _owned_pod(), dryRun=True)),
    (
        "pod of invalid source",
        lambda: Lookup(flinkdeployment(CONFLICT, memory="1g")),
        DEFAULT,
        MUTATE_ID,
        review(PODS, _owned_pod()),
    ),
    (
        "pod lookup failed",
        lambda: Lookup(fail=OwnerLookupError("reading flinkdeployments jobs/demo failed: HTTP 500")),
        DEFAULT,
        MUTATE_ID,
        review(PODS, _owned_pod()),
    ),
    ("pod internal error", lambda: Lookup(fail=KeyError("x")), DEFAULT, MUTATE_ID, review(PODS, _owned_pod())),
    ("mistyped pod", lambda: Lookup(flinkdeployment(memory="2g")), DEFAULT, MUTATE_ID, review(PODS, _mistyped_pod())),
    ("not a flink pod", Lookup, DEFAULT, MUTATE_ID, review(PODS, _owned_pod(type="other"))),
    ("pod update", Lookup, DEFAULT, MUTATE_ID, review(PODS, _owned_pod(), "UPDATE", _owned_pod())),
    (
        "pod mutation off",
        lambda: Lookup(flinkdeployment(memory="2g")),
        Settings(pod_mutation=False),
        MUTATE_ID,
        review(PODS, _owned_pod()),
    ),
    (
        "pod out of scope",
        lambda: Lookup(flinkdeployment(memory="2g")),
        Settings(namespaces=("elsewhere",)),
        MUTATE_ID,
        review(PODS, _owned_pod()),
    ),
]


def _outcome(h: Harness, webhook: str, body: bytes, engine: str) -> dict[str, Any]:
    status, answer, decision = h.post(webhook, body, engine)
    response = copy.deepcopy(dict(answer["response"]))
    patch = response.pop("patch", None)
    if patch is not None:
        # kopf diffs the patched copy, the direct path builds the patch from the plan: the operations may
        # differ, the pod they make may not.
        obj = json.loads(body)["request"]["object"]
        response["patched"] = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(patch)))
    return {
        "status": status,
        "decision": decision,
        "response": response,
        "resolutions": h.resolutions(),
        "events": h.sink.posted,
        "log": h.log.lines,
    }


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_both_transports_give_the_same_answer_metrics_events_and_log(case: Case) -> None:
    _, lookup, settings, webhook, body = case
    direct = _outcome(Harness(lookup(), settings), webhook, body, "direct")
    through_kopf = _outcome(Harness(lookup(), settings), webhook, body, "kopf")
    assert direct == through_kopf
    assert direct["status"] == 200


def test_the_cases_cover_every_kind_of_answer() -> None:
    seen = set()
    for _, lookup, settings, webhook, body in CASES:
        outcome = _outcome(Harness(lookup(), settings), webhook, body, "direct")
        response = outcome["response"]
        seen.add((webhook, response["allowed"], "patched" in response, bool(response.get("warnings"))))
        seen.update(reason for _, _, reason, _ in outcome["events"])
    assert {
        (VALIDATE_ID, True, False, False),
        (VALIDATE_ID, True, False, True),
        (VALIDATE_ID, False, False, False),
        (MUTATE_ID, True, True, False),
        (MUTATE_ID, True, True, True),
        (MUTATE_ID, True, False, True),
        (MUTATE_ID, True, False, False),
        (RECORD_ID, True, True, False),
        (RECORD_ID, True, False, False),
        "MemoryRefused",
        "MemoryNotApplied",
        "MemoryResolved",
        "MemoryConflict",
    } <= seen
