"""The objects and AdmissionReviews the benchmarks send: one realistic FlinkDeployment (valid, or refused
for a heap that does not fit its process size), and the JobManager and TaskManager pods Flink's native
Kubernetes integration creates for it."""

from __future__ import annotations

import json
from typing import Any

CONFIG = {
    "jobmanager.memory.jvm-overhead.fraction": "0.15",
    "jobmanager.memory.enable-jvm-direct-memory-limit": "true",
    "env.java.opts.jobmanager": "-XX:+UseG1GC",
    "taskmanager.numberOfTaskSlots": "4",
}
# A 3g heap cannot fit the 2g process the spec asks for: flinkmem refuses it with a 422.
REFUSED_CONFIG = {**CONFIG, "jobmanager.memory.heap.size": "3g"}
CONTAINER = "flink-main-container"
FD_RESOURCE = {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"}
FD_KIND = {"group": "flink.apache.org", "version": "v1beta1", "kind": "FlinkDeployment"}
POD_RESOURCE = {"group": "", "version": "v1", "resource": "pods"}
POD_KIND = {"group": "", "version": "v1", "kind": "Pod"}


def flinkdeployment(name: str, namespace: str, *, refused: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "flinkVersion": "v1_20",
            "flinkConfiguration": dict(REFUSED_CONFIG if refused else CONFIG),
            "jobManager": {"resource": {"memory": "2g"}},
            "taskManager": {"resource": {"memory": "4g"}},
        },
    }


def _flink_pod(name: str, namespace: str, labels: dict[str, str], cpu: str) -> dict[str, Any]:
    # Shaped like the pods Flink's native Kubernetes client builds: one main container with the
    # resources of the spec, Flink's environment, ports and a config volume.
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": CONTAINER,
                    "image": "flink:1.20",
                    "args": ["bash", "-c", "kubernetes-jobmanager.sh kubernetes-session"],
                    "env": [
                        {"name": "_POD_IP_ADDRESS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "FLINK_CONF_DIR", "value": "/opt/flink/conf"},
                    ],
                    "ports": [{"containerPort": 6123, "name": "rpc"}, {"containerPort": 6124, "name": "blob"}],
                    "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}},
                    "volumeMounts": [{"name": "flink-config-volume", "mountPath": "/opt/flink/conf"}],
                }
            ],
            "volumes": [{"name": "flink-config-volume", "configMap": {"name": f"flink-config-{labels['app']}"}}],
            "restartPolicy": "Never",
        },
    }


def jobmanager_pod(name: str, owner: str, namespace: str) -> dict[str, Any]:
    labels = {"app": owner, "component": "jobmanager", "type": "flink-native-kubernetes"}
    return _flink_pod(name, namespace, labels, "1")


def taskmanager_pod(name: str, owner: str, namespace: str) -> dict[str, Any]:
    labels = {"app": owner, "component": "taskmanager", "type": "flink-native-kubernetes"}
    return _flink_pod(name, namespace, labels, "2")


def unrelated_pod(name: str, namespace: str) -> dict[str, Any]:
    """A pod of another application in a watched namespace: flinkmem has nothing to do with it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "shop", "tier": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "resources": {"requests": {"cpu": "100m"}}}]},
    }


def review(uid: str, obj: dict[str, Any], *, user: str = "bench") -> bytes:
    """An AdmissionReview for the CREATE of `obj`, as the API server sends it."""
    is_pod = obj["kind"] == "Pod"
    request = {
        "uid": uid,
        "kind": POD_KIND if is_pod else FD_KIND,
        "resource": POD_RESOURCE if is_pod else FD_RESOURCE,
        "requestKind": POD_KIND if is_pod else FD_KIND,
        "requestResource": POD_RESOURCE if is_pod else FD_RESOURCE,
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"]["namespace"],
        "operation": "CREATE",
        "userInfo": {"username": user, "groups": ["system:masters", "system:authenticated"]},
        "object": obj,
        "oldObject": None,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}).encode()


def flink_configmap(cluster: str, namespace: str) -> dict[str, Any]:
    """The ConfigMap Flink's native client writes for `flinkdeployment(cluster, ...)`'s cluster before its
    TaskManagers start (flinkmem reads it for each TaskManager pod: the operator's autoscaler may tune it)."""
    config = {**CONFIG, "jobmanager.memory.process.size": "2g", "taskmanager.memory.process.size": "4g"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"flink-config-{cluster}",
            "namespace": namespace,
            "labels": {"app": cluster, "type": "flink-native-kubernetes"},
        },
        "data": {"config.yaml": "".join(f"{key}: {value}\n" for key, value in config.items())},
    }
