"""Small builders for FlinkDeployment and pod objects used across the unit tests."""

from __future__ import annotations

from typing import Any


def flinkdeployment(
    config: dict[str, Any] | None = None,
    memory: str | None = "1600m",
    version: str = "v1_20",
    mode: str | None = None,
    name: str = "demo",
    namespace: str = "jobs",
    jm_template: dict[str, Any] | None = None,
    tm_memory: str | None = "1728m",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"flinkVersion": version, "flinkConfiguration": config or {}}
    if tm_memory is not None:
        # The Apache operator refuses a FlinkDeployment without TaskManager memory; so does Flink's client.
        spec["taskManager"] = {"resource": {"memory": tm_memory, "cpu": 1}}
    jm: dict[str, Any] = {}
    if memory is not None:
        jm["resource"] = {"memory": memory, "cpu": 1}
    if jm_template is not None:
        jm["podTemplate"] = jm_template
    spec["jobManager"] = jm
    if mode is not None:
        spec["mode"] = mode
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def container_template(limit: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "flink-main-container"}
    if limit is not None:
        container["resources"] = {"limits": {"memory": limit}}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {"spec": {"containers": [container]}}


def jobmanager_pod(
    name: str = "demo",
    resources: dict[str, Any] | None = None,
    env: list[dict[str, Any]] | None = None,
    extra_containers: int = 1,
) -> dict[str, Any]:
    main: dict[str, Any] = {"name": "flink-main-container", "image": "flink:2.1"}
    if resources is not None:
        main["resources"] = resources
    if env is not None:
        main["env"] = env
    sidecars = [{"name": f"sidecar-{i}", "image": "busybox"} for i in range(extra_containers)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{name}-",
            "namespace": "jobs",
            "labels": {"app": name, "component": "jobmanager", "type": "flink-native-kubernetes"},
        },
        "spec": {"containers": [*sidecars, main]},
    }
