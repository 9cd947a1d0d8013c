from __future__ import annotations

import copy

from flinkmem.decisions.deployment import Outcome, review_flinkdeployment
from flinkmem.decisions.policy import ValidationMode
from flinkmem.decisions.validation import WARNING_LIMIT
from flinkmem.sources.flinkdeployment import memory_inputs
from tests.unit.fixtures import container_template, flinkdeployment

ENFORCE, WARN, AUDIT = ValidationMode.ENFORCE, ValidationMode.WARN, ValidationMode.AUDIT
CONFLICT = {"jobmanager.memory.heap.size": "2g"}  # with memory 1g: heap does not fit the process


def test_valid_create_is_allowed_without_conflicts() -> None:
    decision = review_flinkdeployment("CREATE", flinkdeployment(), None, ENFORCE, "flink-main-container")
    assert decision.allowed
    assert decision.outcome is Outcome.ALLOWED
    assert decision.conflicts == ()


def test_conflicting_create_is_denied_with_422_naming_options_and_fix() -> None:
    obj = flinkdeployment(CONFLICT, memory="1g")
    decision = review_flinkdeployment("CREATE", obj, None, ENFORCE, "flink-main-container")
    assert not decision.allowed
    assert decision.code == 422
    assert "jobs/demo" in decision.message
    assert "jobmanager.memory.process.size" in decision.message
    assert "Fix:" in decision.message
    assert decision.conflicts[0].code == "process-below-flink-plus-metaspace"


def test_warn_mode_admits_conflicts_as_short_warnings() -> None:
    obj = flinkdeployment(CONFLICT, memory="1g")
    decision = review_flinkdeployment("CREATE", obj, None, WARN, "flink-main-container")
    assert decision.allowed and decision.outcome is Outcome.WARNED
    assert any("warn mode" in w for w in decision.warnings)
    assert all(len(w) <= WARNING_LIMIT for w in decision.warnings)
    # Wrapping keeps every word of the conflict across the lines.
    joined = " ".join(decision.warnings)
    assert "jobmanager.memory.process.size" in joined


def test_audit_mode_admits_silently_but_keeps_the_conflicts() -> None:
    obj = flinkdeployment(CONFLICT, memory="1g")
    decision = review_flinkdeployment("CREATE", obj, None, AUDIT, "flink-main-container")
    assert decision.allowed and decision.outcome is Outcome.AUDITED
    assert decision.conflicts
    assert not any("flinkmem" in w for w in decision.warnings)


def test_update_into_conflict_is_denied() -> None:
    old = flinkdeployment()
    new = flinkdeployment(CONFLICT, memory="1g")
    decision = review_flinkdeployment("UPDATE", new, old, ENFORCE, "flink-main-container")
    assert not decision.allowed


def test_metadata_only_update_of_conflicting_object_passes_with_warning() -> None:
    old = flinkdeployment(CONFLICT, memory="1g")
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"team": "data"}
    new["metadata"]["finalizers"] = ["flinkdeployments.flink.apache.org/finalizer"]
    new["status"] = {"lifecycleState": "DEPLOYED"}
    decision = review_flinkdeployment("UPDATE", new, old, ENFORCE, "flink-main-container")
    assert decision.allowed
    assert decision.outcome is Outcome.EXISTING_CONFLICT
    assert any("left as it was" in w for w in decision.warnings)


def test_update_changing_memory_inputs_of_conflicting_object_is_denied() -> None:
    old = flinkdeployment(CONFLICT, memory="1g")
    new = flinkdeployment({"jobmanager.memory.heap.size": "3g"}, memory="1g")
    decision = review_flinkdeployment("UPDATE", new, old, ENFORCE, "flink-main-container")
    assert not decision.allowed


def test_delete_is_never_blocked() -> None:
    old = flinkdeployment(CONFLICT, memory="1g")
    decision = review_flinkdeployment("DELETE", None, old, ENFORCE, "flink-main-container")
    assert decision.allowed


def test_template_limit_below_process_is_admitted_with_a_warning() -> None:
    """Flink writes its own size over the template's (issue 13: this was once a false refusal)."""
    obj = flinkdeployment(memory="2g", jm_template=container_template(limit="1Gi"))
    decision = review_flinkdeployment("CREATE", obj, None, ENFORCE, "flink-main-container")
    assert decision.allowed
    assert decision.conflicts == ()
    text = " ".join(decision.warnings)
    assert "memory limit 1Gi is not used" in text and "2048Mi" in text


def test_java_opts_xmx_contradicting_heap_is_a_conflict() -> None:
    obj = flinkdeployment({"env.java.opts.jobmanager": "-Xmx4g -XX:+UseG1GC"})
    decision = review_flinkdeployment("CREATE", obj, None, ENFORCE, "flink-main-container")
    assert not decision.allowed
    assert decision.conflicts[0].code == "java-opts-heap-conflict"
    assert "env.java.opts.jobmanager" in decision.message


def test_overridden_process_size_is_warned() -> None:
    obj = flinkdeployment({"jobmanager.memory.process.size": "4g"}, memory="2g")
    decision = review_flinkdeployment("CREATE", obj, None, ENFORCE, "flink-main-container")
    assert decision.allowed
    assert any("replaces jobmanager.memory.process.size" in w for w in decision.warnings)


def test_legacy_key_on_flink_2_is_warned() -> None:
    obj = flinkdeployment({"jobmanager.heap.size": "1g"}, version="v2_1")
    decision = review_flinkdeployment("CREATE", obj, None, ENFORCE, "flink-main-container")
    assert decision.allowed
    assert any("jobmanager.heap.size is ignored" in w for w in decision.warnings)


def test_malformed_spec_is_denied_naming_the_field() -> None:
    obj = flinkdeployment()
    obj["spec"]["flinkVersion"] = "flink-two"
    decision = review_flinkdeployment("CREATE", obj, None, ENFORCE, "flink-main-container")
    assert not decision.allowed
    assert "spec.flinkVersion" in decision.message


def test_memory_inputs_ignore_metadata_and_status() -> None:
    a = flinkdeployment()
    b = copy.deepcopy(a)
    b["metadata"]["annotations"] = {"x": "y"}
    b["status"] = {"error": "boom"}
    assert memory_inputs(a) == memory_inputs(b)
    b["spec"]["jobManager"]["resource"]["memory"] = "2g"
    assert memory_inputs(a) != memory_inputs(b)


def test_own_identity_may_annotate_but_never_change_a_spec() -> None:
    me = "system:serviceaccount:flinkmem:flinkmem"
    old = flinkdeployment()
    annotated = copy.deepcopy(old)
    annotated["metadata"]["annotations"] = {"flinkmem.io/resolved-memory": "{}"}
    ok = review_flinkdeployment("UPDATE", annotated, old, ENFORCE, "flink-main-container", actor=me, own_identity=me)
    assert ok.allowed
    changed = copy.deepcopy(old)
    changed["spec"]["jobManager"]["resource"]["memory"] = "4g"
    denied = review_flinkdeployment("UPDATE", changed, old, AUDIT, "flink-main-container", actor=me, own_identity=me)
    assert not denied.allowed and denied.code == 403
    assert "flinkmem never writes spec" in denied.message
    others = review_flinkdeployment(
        "UPDATE", changed, old, ENFORCE, "flink-main-container", actor="alice", own_identity=me
    )
    assert others.allowed
