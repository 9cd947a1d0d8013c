from __future__ import annotations

import copy
import json

from flinkmem.podpatch import (
    JVM_FLAGS_ANNOTATION,
    RESOLVED_ANNOTATION,
    apply_plan,
    is_jobmanager_pod,
    owner_deployment_name,
    plan_pod,
)
from flinkmem.validation import validate_deployment
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

CONTAINER = "flink-main-container"
# Flink's own result for process 2g (spec vector C02): heap 1530082096, metaspace 268435456.
C02_FLAGS = "-Xmx1530082096 -Xms1530082096 -XX:MaxMetaspaceSize=268435456"


def _env(container: dict[str, object]) -> dict[str, object]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}  # type: ignore[attr-defined]


def test_selects_flink_jobmanager_pods_and_opt_in() -> None:
    assert is_jobmanager_pod({"component": "jobmanager", "type": "flink-native-kubernetes"})
    assert is_jobmanager_pod({"component": "jobmanager", "type": "flink-standalone-kubernetes"})
    assert not is_jobmanager_pod({"component": "taskmanager", "type": "flink-native-kubernetes"})
    assert not is_jobmanager_pod({"component": "jobmanager"})
    assert is_jobmanager_pod({"flinkmem.io/jobmanager": "true"})
    assert owner_deployment_name({"app": "demo"}) == "demo"
    assert owner_deployment_name({}) is None


def test_plan_sets_memory_env_and_annotations_only_on_main_container() -> None:
    validation = validate_deployment(flinkdeployment(memory="2g"))
    pod = jobmanager_pod()
    plan = plan_pod(pod, validation, CONTAINER)
    assert plan is not None and plan.changed
    patched = copy.deepcopy(pod)
    apply_plan(patched, plan)
    sidecar, main = patched["spec"]["containers"]
    assert sidecar == pod["spec"]["containers"][0]
    assert main["resources"]["requests"]["memory"] == "2048Mi"
    assert main["resources"]["limits"]["memory"] == "2048Mi"
    assert _env(main)["FLINK_ENV_JAVA_OPTS_JM"] == C02_FLAGS
    annotations = patched["metadata"]["annotations"]
    assert annotations[JVM_FLAGS_ANNOTATION] == C02_FLAGS
    assert json.loads(annotations[RESOLVED_ANNOTATION])["totalProcessMemory"] == 2 * 1024**3


def test_second_admission_changes_nothing() -> None:
    validation = validate_deployment(flinkdeployment(memory="2g"))
    pod = jobmanager_pod()
    first = plan_pod(pod, validation, CONTAINER)
    assert first is not None
    apply_plan(pod, first)
    second = plan_pod(pod, validation, CONTAINER)
    assert second is not None
    assert second.changes == ()


def test_rounds_up_to_whole_mebibytes_and_applies_limit_factor() -> None:
    # flink.size 2000m derives a total process of 2628430511 bytes = 2506.67 MiB (spec section 11).
    obj = flinkdeployment(
        {"jobmanager.memory.flink.size": "2000m", "kubernetes.jobmanager.memory.limit-factor": "1.5"}, memory=None
    )
    validation = validate_deployment(obj)
    plan = plan_pod(jobmanager_pod(), validation, CONTAINER)
    assert plan is not None
    assert plan.resources["requests"]["memory"] == "2507Mi"
    assert plan.resources["limits"]["memory"] == "3761Mi"  # ceil(2628430511 * 1.5 / 2**20) = ceil(3760.0000062)


def test_never_lowers_existing_larger_values() -> None:
    validation = validate_deployment(flinkdeployment(memory="1600m"))
    pod = jobmanager_pod(resources={"requests": {"memory": "4Gi", "cpu": "1"}, "limits": {"memory": "8Gi"}})
    plan = plan_pod(pod, validation, CONTAINER)
    assert plan is not None
    assert plan.resources["requests"] == {"memory": "4Gi", "cpu": "1"}
    assert plan.resources["limits"] == {"memory": "8Gi"}


def test_limit_follows_a_larger_existing_request() -> None:
    validation = validate_deployment(flinkdeployment(memory="1600m"))
    pod = jobmanager_pod(resources={"requests": {"memory": "3Gi"}})
    plan = plan_pod(pod, validation, CONTAINER)
    assert plan is not None
    assert plan.resources["limits"]["memory"] == "3Gi"


def test_user_java_opts_are_kept_and_memory_flags_replaced() -> None:
    obj = flinkdeployment({"env.java.opts.jobmanager": "-XX:+UseG1GC -Dfoo=bar"}, memory="2g")
    validation = validate_deployment(obj)
    plan = plan_pod(jobmanager_pod(), validation, CONTAINER)
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}
    assert env["FLINK_ENV_JAVA_OPTS_JM"] == f"-XX:+UseG1GC -Dfoo=bar {C02_FLAGS}"


def test_existing_env_value_wins_over_config_and_loses_its_memory_flags() -> None:
    validation = validate_deployment(flinkdeployment(memory="2g"))
    pod = jobmanager_pod(env=[{"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-Xmx9g -verbose:gc -Xms9g"}])
    plan = plan_pod(pod, validation, CONTAINER)
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}
    assert env["FLINK_ENV_JAVA_OPTS_JM"] == f"-verbose:gc {C02_FLAGS}"


def test_direct_memory_limit_flag_when_enabled() -> None:
    obj = flinkdeployment({"jobmanager.memory.enable-jvm-direct-memory-limit": "true"}, memory="1600m")
    plan = plan_pod(jobmanager_pod(), validate_deployment(obj), CONTAINER)
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}
    assert env["FLINK_ENV_JAVA_OPTS_JM"] == (
        "-Xmx1073741824 -Xms1073741824 -XX:MaxDirectMemorySize=134217728 -XX:MaxMetaspaceSize=268435456"
    )


def test_no_plan_without_the_main_container_or_for_invalid_config() -> None:
    validation = validate_deployment(flinkdeployment(memory="2g"))
    pod = jobmanager_pod()
    pod["spec"]["containers"] = [{"name": "other"}]
    assert plan_pod(pod, validation, CONTAINER) is None
    invalid = validate_deployment(flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g"))
    assert plan_pod(jobmanager_pod(), invalid, CONTAINER) is None
