from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from flinkmem.conventions import JVM_FLAGS_ANNOTATION, RESOLVED_ANNOTATION, SIZED_LABEL
from flinkmem.decisions.podplan import PodPlan, apply_plan, plan_pod
from flinkmem.decisions.validation import RoleValidation, validate_deployment
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.pods import main_container
from flinkmem.sources.roles import TASKMANAGER
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

CONTAINER = "flink-main-container"
# Flink's own result for process 2g (spec vector C02): heap 1530082096, metaspace 268435456.
C02_FLAGS = "-Xmx1530082096 -Xms1530082096 -XX:MaxMetaspaceSize=268435456"


def plan(pod: dict[str, Any], result: RoleValidation, source: FlinkSource) -> PodPlan | None:
    """The plan for the pod's main container, as the webhook finds it; None without one."""
    found = main_container(pod, CONTAINER)
    return None if found is None else plan_pod(pod, found[0], result, source)


def planned(obj: dict[str, Any], pod: dict[str, Any]) -> PodPlan | None:
    validation = validate_deployment(obj)
    assert validation.source is not None and validation.jobmanager is not None
    return plan(pod, validation.jobmanager, validation.source)


def test_plan_sets_memory_and_annotations_only_on_main_container() -> None:
    pod = jobmanager_pod()
    plan = planned(flinkdeployment(memory="2g"), pod)
    assert plan is not None and plan.changed
    patched = copy.deepcopy(pod)
    apply_plan(patched, plan)
    sidecar, main = patched["spec"]["containers"]
    assert sidecar == pod["spec"]["containers"][0]
    assert main["resources"]["requests"]["memory"] == "2048Mi"
    assert main["resources"]["limits"]["memory"] == "2048Mi"
    # No memory flag in the Java options: Flink's own flags are the derived ones, so no options are written.
    assert "env" not in main and not plan.env_changed
    annotations = patched["metadata"]["annotations"]
    assert annotations[JVM_FLAGS_ANNOTATION] == C02_FLAGS
    resolved = json.loads(annotations[RESOLVED_ANNOTATION])
    assert resolved["totalProcessMemory"] == 2 * 1024**3
    assert resolved["role"] == "jobmanager" and resolved["source"] == "FlinkDeployment jobs/demo"


def test_second_admission_changes_nothing() -> None:
    obj = flinkdeployment(memory="2g")
    pod = jobmanager_pod()
    first = planned(obj, pod)
    assert first is not None
    apply_plan(pod, first)
    second = planned(obj, pod)
    assert second is not None
    assert second.changes == ()


def test_rounds_up_to_whole_mebibytes_and_applies_limit_factor() -> None:
    # flink.size 2000m derives a total process of 2628430511 bytes = 2506.67 MiB (spec section 11).
    obj = flinkdeployment(
        {"jobmanager.memory.flink.size": "2000m", "kubernetes.jobmanager.memory.limit-factor": "1.5"}, memory=None
    )
    plan = planned(obj, jobmanager_pod())
    assert plan is not None
    assert plan.resources["requests"]["memory"] == "2507Mi"
    assert plan.resources["limits"]["memory"] == "3761Mi"  # ceil(2628430511 * 1.5 / 2**20) = ceil(3760.0000062)


def test_never_lowers_existing_larger_values() -> None:
    obj = flinkdeployment(memory="1600m")
    pod = jobmanager_pod(resources={"requests": {"memory": "4Gi", "cpu": "1"}, "limits": {"memory": "8Gi"}})
    plan = planned(obj, pod)
    assert plan is not None
    assert plan.resources["requests"] == {"memory": "4Gi", "cpu": "1"}
    assert plan.resources["limits"] == {"memory": "8Gi"}


def test_limit_follows_a_larger_existing_request() -> None:
    obj = flinkdeployment(memory="1600m")
    pod = jobmanager_pod(resources={"requests": {"memory": "3Gi"}})
    plan = planned(obj, pod)
    assert plan is not None
    assert plan.resources["limits"]["memory"] == "3Gi"


def test_java_opts_without_memory_flags_are_left_to_flink() -> None:
    obj = flinkdeployment({"env.java.opts.jobmanager": "-XX:+UseG1GC -Dfoo=bar"}, memory="2g")
    plan = planned(obj, jobmanager_pod())
    assert plan is not None and not plan.env_changed
    assert "FLINK_ENV_JAVA_OPTS_JM" not in {e["name"] for e in plan.env}


def test_user_java_opts_with_a_memory_flag_are_kept_and_the_flag_replaced() -> None:
    obj = flinkdeployment({"env.java.opts.jobmanager": "-XX:+UseG1GC -Xmx4g -Dfoo=bar"}, memory="2g")
    plan = planned(obj, jobmanager_pod())
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}
    assert env["FLINK_ENV_JAVA_OPTS_JM"] == f"-XX:+UseG1GC -Dfoo=bar {C02_FLAGS}"


def test_a_memory_flag_for_every_process_is_overridden_in_the_roles_options() -> None:
    obj = flinkdeployment(
        {"env.java.opts.all": "-XX:MaxMetaspaceSize=64m", "env.java.opts.jobmanager": "-ea"}, memory="2g"
    )
    plan = planned(obj, jobmanager_pod())
    assert plan is not None
    assert {e["name"]: e["value"] for e in plan.env}["FLINK_ENV_JAVA_OPTS_JM"] == f"-ea {C02_FLAGS}"


def test_an_equal_memory_flag_needs_no_override() -> None:
    obj = flinkdeployment({"env.java.opts.jobmanager": "-Xmx1530082096"}, memory="2g")
    plan = planned(obj, jobmanager_pod())
    assert plan is not None and not plan.env_changed


def test_existing_env_value_wins_over_config_and_loses_its_memory_flags() -> None:
    obj = flinkdeployment(memory="2g")
    pod = jobmanager_pod(env=[{"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-Xmx9g -verbose:gc -Xms9g"}])
    plan = planned(obj, pod)
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}
    assert env["FLINK_ENV_JAVA_OPTS_JM"] == f"-verbose:gc {C02_FLAGS}"


def test_direct_memory_limit_flag_when_enabled() -> None:
    obj = flinkdeployment(
        {"jobmanager.memory.enable-jvm-direct-memory-limit": "true", "env.java.opts.jobmanager": "-Xms2g"},
        memory="1600m",
    )
    plan = planned(obj, jobmanager_pod())
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}
    assert env["FLINK_ENV_JAVA_OPTS_JM"] == (
        "-Xmx1073741824 -Xms1073741824 -XX:MaxDirectMemorySize=134217728 -XX:MaxMetaspaceSize=268435456"
    )


def test_no_plan_without_the_main_container_or_for_invalid_config() -> None:
    obj = flinkdeployment(memory="2g")
    pod = jobmanager_pod()
    pod["spec"]["containers"] = [{"name": "other"}]
    assert planned(obj, pod) is None
    invalid = validate_deployment(flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g"))
    assert invalid.source is not None and invalid.jobmanager is not None
    assert plan(jobmanager_pod(), invalid.jobmanager, invalid.source) is None


# ---------------------------------------------------------------------------------------------
# TaskManager pods. Expected values are what real Flink built (issue 13's native-client runs): a
# TaskManager of taskmanager.memory.process.size 1728m with kubernetes.taskmanager.memory.limit-factor
# 1.25 got requests 1728Mi / limits 2160Mi and FLINK_TM_JVM_MEM_OPTS as below (spec vector V01).

TM_FLAGS = "-Xmx536870902 -Xms536870902 -XX:MaxDirectMemorySize=268435458 -XX:MaxMetaspaceSize=268435456"


def taskmanager_pod(env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    pod = jobmanager_pod(env=env)
    pod["metadata"]["labels"]["component"] = "taskmanager"
    return pod


def planned_tm(obj: dict[str, Any], pod: dict[str, Any]) -> PodPlan | None:
    validation = validate_deployment(obj)
    result = validation.role(TASKMANAGER)
    assert validation.source is not None and result is not None
    return plan(pod, result, validation.source)


def test_taskmanager_pod_gets_its_size_limit_factor_and_java_options() -> None:
    obj = flinkdeployment(
        {
            "kubernetes.taskmanager.memory.limit-factor": "1.25",
            "env.java.opts.taskmanager": "-XX:+UseParallelGC -XX:MaxDirectMemorySize=1g",
        },
        tm_memory="1728m",
    )
    plan = planned_tm(obj, taskmanager_pod())
    assert plan is not None
    assert plan.resources["requests"]["memory"] == "1728Mi"
    assert plan.resources["limits"]["memory"] == "2160Mi"
    env = {e["name"]: e["value"] for e in plan.env}
    assert env["FLINK_ENV_JAVA_OPTS_TM"] == f"-XX:+UseParallelGC {TM_FLAGS}"
    assert "FLINK_ENV_JAVA_OPTS_JM" not in env
    assert json.loads(plan.annotations[RESOLVED_ANNOTATION])["role"] == "taskmanager"
    assert plan.annotations[JVM_FLAGS_ANNOTATION] == TM_FLAGS


def test_a_sized_pod_carries_a_label_with_a_digest_of_what_was_set_and_that_alone_is_no_drift() -> None:
    pod = jobmanager_pod()
    first = planned(flinkdeployment(memory="2g"), pod)
    assert first is not None
    patched = copy.deepcopy(pod)
    apply_plan(patched, first)
    label = patched["metadata"]["labels"][SIZED_LABEL]
    assert len(label) == 20 and all(c in "0123456789abcdef" for c in label)
    assert jsonpatch.apply_patch(pod, first.json_patch(pod)) == patched  # the direct path's patch agrees
    # Another size is another digest; a pod sized as planned but without the label lacks only the label.
    other = planned(flinkdeployment(memory="3g"), pod)
    assert other is not None and other.labels[SIZED_LABEL] != label
    unlabelled = copy.deepcopy(patched)
    del unlabelled["metadata"]["labels"][SIZED_LABEL]
    again = planned(flinkdeployment(memory="2g"), unlabelled)
    assert again is not None and again.changes == (f"label {SIZED_LABEL}",) and again.drift == ()
