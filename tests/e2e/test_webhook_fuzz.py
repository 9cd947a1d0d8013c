"""Bad input against the running webhook server: every request gets an AdmissionReview or a 4xx.

Hypothesis generates malformed bytes, arbitrary JSON, AdmissionReviews with wrong or missing
fields and kinds, FlinkDeployments and pods with hostile specs, deep nesting and non-UTF-8, and posts
them over HTTPS to the real `flinkmem serve` process (20,000 cases in all). No 5xx, no crash, no hang;
the largest AdmissionReviews the API server can send are served, directly and through the API server.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flinkmem.conventions import MUTATE_ID, VALIDATE_ID
from localplane.controlplane import Cluster
from localplane.serve import RunningOperator, running_flinkmem

pytestmark = pytest.mark.e2e

PATHS = [VALIDATE_ID, MUTATE_ID, "unknown-webhook", ""]
JM_KEYS = [
    "jobmanager.memory.process.size",
    "jobmanager.memory.flink.size",
    "jobmanager.memory.heap.size",
    "jobmanager.memory.off-heap.size",
    "jobmanager.memory.jvm-metaspace.size",
    "jobmanager.memory.jvm-overhead.min",
    "jobmanager.memory.jvm-overhead.max",
    "jobmanager.memory.jvm-overhead.fraction",
    "jobmanager.memory.enable-jvm-direct-memory-limit",
    "jobmanager.heap.size",
    "jobmanager.heap.mb",
    "kubernetes.jobmanager.memory.limit-factor",
    "env.java.opts.jobmanager",
]
FUZZ = settings(
    max_examples=4000,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
size_texts = st.from_regex(r"\s?[0-9]{0,22}\s?(b|k|kb|m|mb|g|gb|t|tb|Mi|Gi|mib|\.5g|)?\s?", fullmatch=True)
config_values = size_texts | st.sampled_from(["0.1", "NaN", "true", "yes", "-1", "", "1e-50", "0x1p-3"]) | json_values


class Client:
    def __init__(self, operator: RunningOperator) -> None:
        self.operator = operator
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.operator.webhook_port, context=self.operator.ssl_context(), timeout=15
        )

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.connection.request("POST", f"/{path}", body=body, headers={"Content-Type": "application/json"})
                response = self.connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                # The server may close a connection after a 4xx; a fresh one must work at once.
                self.connection.close()
                self.connection = self._connect()
                if attempt:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def client(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with running_flinkmem(cluster.kubeconfig, tmp_path_factory.mktemp("fuzz")) as operator:
        yield Client(operator)
        assert operator.alive(), operator.log()[-3000:]
        assert operator.get("/healthz")[0] == 200


def check(status: int, payload: bytes, sent: Any) -> None:
    assert status < 500, (status, payload[:500])
    if status != 200:
        assert 400 <= status < 500
        return
    answer = json.loads(payload)
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert isinstance(response["allowed"], bool)
    assert response["uid"] == sent["request"]["uid"]
    if "patch" in response:
        assert isinstance(json.loads(base64.b64decode(response["patch"])), list)
    for warning in response.get("warnings", []):
        assert isinstance(warning, str)


def review(resource: dict[str, str], operation: str, obj: Any, old: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "fuzz-uid",
            "kind": {"group": resource["group"], "version": resource["version"], "kind": "X"},
            "resource": resource,
            "namespace": "fuzz",
            "operation": operation,
            "userInfo": {"username": "fuzzer"},
            "object": obj,
            "oldObject": old,
            "dryRun": True,
        },
    }


FD = {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"}
PODS = {"group": "", "version": "v1", "resource": "pods"}

flinkdeployments = st.fixed_dictionaries(
    {
        "apiVersion": st.just("flink.apache.org/v1beta1"),
        "kind": st.just("FlinkDeployment"),
        "metadata": st.fixed_dictionaries({"name": st.text(max_size=10), "namespace": st.just("fuzz")}),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "flinkVersion": st.sampled_from(["v1_15", "v1_20", "v2_0", "v2_3", "v2_x", "v9_9", ""]) | json_values,
                "mode": st.sampled_from(["native", "standalone", "NATIVE", "other"]) | json_values,
                "flinkConfiguration": st.dictionaries(st.sampled_from(JM_KEYS) | st.text(max_size=10), config_values)
                | json_values,
                "jobManager": st.fixed_dictionaries(
                    {},
                    optional={
                        "resource": st.fixed_dictionaries({}, optional={"memory": size_texts | json_values})
                        | json_values,
                        "podTemplate": json_values,
                    },
                )
                | json_values,
                "podTemplate": json_values,
            },
        )
        | json_values,
    }
)

pods = st.fixed_dictionaries(
    {
        "apiVersion": st.just("v1"),
        "kind": st.just("Pod"),
        "metadata": st.fixed_dictionaries(
            {
                "namespace": st.just("fuzz"),
                "labels": st.fixed_dictionaries(
                    {"component": st.just("jobmanager"), "type": st.just("flink-native-kubernetes")},
                    optional={"app": st.text(max_size=8)},
                )
                | json_values,
            },
            optional={"annotations": json_values, "ownerReferences": json_values},
        ),
        "spec": st.fixed_dictionaries({"containers": st.lists(json_values, max_size=3) | json_values}) | json_values,
    }
)


@FUZZ
@given(body=st.binary(max_size=3000), path=st.sampled_from(PATHS))
def test_raw_bytes(client: Client, body: bytes, path: str) -> None:
    status, payload = client.post(path, body)
    assert status < 500, (status, payload[:300])


@FUZZ
@given(value=json_values, path=st.sampled_from(PATHS))
def test_arbitrary_json(client: Client, value: Any, path: str) -> None:
    status, payload = client.post(path, json.dumps(value).encode())
    assert status < 500, (status, payload[:300])


@FUZZ
@given(
    data=st.fixed_dictionaries(
        {"apiVersion": st.sampled_from(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]) | json_values},
        optional={
            "kind": st.sampled_from(["AdmissionReview", "Pod"]) | json_values,
            "request": st.fixed_dictionaries(
                {},
                optional={
                    "uid": st.text(max_size=8) | json_values,
                    "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT", "PATCH"]) | json_values,
                    "resource": st.sampled_from([FD, PODS]) | json_values,
                    "userInfo": json_values,
                    "object": json_values,
                    "oldObject": json_values,
                    "namespace": json_values,
                    "dryRun": json_values,
                },
            )
            | json_values,
        },
    ),
    path=st.sampled_from(PATHS),
)
def test_malformed_admission_reviews(client: Client, data: Any, path: str) -> None:
    status, payload = client.post(path, json.dumps(data).encode())
    assert status < 500, (status, payload[:300])
    if status == 200:
        check(status, payload, data)


@FUZZ
@given(
    obj=flinkdeployments, old=st.none() | flinkdeployments, operation=st.sampled_from(["CREATE", "UPDATE", "DELETE"])
)
def test_hostile_flinkdeployments(client: Client, obj: Any, old: Any, operation: str) -> None:
    sent = review(FD, operation, obj, old)
    status, payload = client.post(VALIDATE_ID, json.dumps(sent).encode())
    check(status, payload, sent)
    assert status == 200


@FUZZ
@given(pod=pods)
def test_hostile_jobmanager_pods(client: Client, pod: Any) -> None:
    sent = review(PODS, "CREATE", pod)
    status, payload = client.post(MUTATE_ID, json.dumps(sent).encode())
    check(status, payload, sent)
    assert status == 200
    # Pods are never refused: flinkmem fails open.
    assert json.loads(payload)["response"]["allowed"] is True


# ---------------------------------------------------------------------------------------------
# Wrong types at every level: a valid object with one node replaced by a null or a value of another type


VALID_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "flink.apache.org/v1beta1",
    "kind": "FlinkDeployment",
    "metadata": {"name": "typed", "namespace": "fuzz", "labels": {"team": "a"}, "annotations": {"note": "x"}},
    "spec": {
        "flinkVersion": "v1_20",
        "mode": "native",
        "flinkConfiguration": {"jobmanager.memory.process.size": "1600m", "env.java.opts.jobmanager": "-Xss1m"},
        "podTemplate": {
            "spec": {
                "containers": [
                    {
                        "name": "flink-main-container",
                        "env": [{"name": "A", "value": "b"}],
                        "resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "2Gi"}},
                    }
                ]
            }
        },
        "jobManager": {"resource": {"memory": "2g", "cpu": 1}, "podTemplate": {"spec": {"containers": []}}},
        "taskManager": {"resource": {"memory": "2g", "cpu": 1}},
    },
}
VALID_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "typed-jm",
        "namespace": "fuzz",
        "labels": {"app": "typed", "component": "jobmanager", "type": "flink-native-kubernetes"},
        "annotations": {"note": "x"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "typed", "uid": "u"}],
    },
    "spec": {
        "containers": [
            {"name": "sidecar", "image": "busybox"},
            {
                "name": "flink-main-container",
                "image": "flink:1.20.3",
                "args": ["bash", "-c", "kubernetes-jobmanager.sh kubernetes-session -D a=b"],
                "env": [{"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-Xss1m"}],
                "resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "1Gi"}},
            },
        ]
    },
}
WRONG_TYPES = st.sampled_from([None, 0, -1, 1.5, True, "", "x", [], [None], {}, {"a": None}])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _replaced(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(obj))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


@FUZZ
@given(data=st.data(), wrong=WRONG_TYPES)
def test_flinkdeployments_with_a_wrong_type_anywhere(client: Client, data: st.DataObject, wrong: Any) -> None:
    path = data.draw(st.sampled_from(_paths(VALID_DEPLOYMENT)))
    obj = _replaced(VALID_DEPLOYMENT, path, wrong)
    for operation, old in (("CREATE", None), ("UPDATE", VALID_DEPLOYMENT)):
        sent = review(FD, operation, obj, old)
        status, payload = client.post(VALIDATE_ID, json.dumps(sent).encode())
        check(status, payload, sent)
        assert status == 200
        response = json.loads(payload)["response"]
        if not response["allowed"]:
            # A refusal names what to fix; it is never a handler failure.
            assert response["status"]["code"] != 500, response
            assert response["status"]["message"], response


@FUZZ
@given(data=st.data(), wrong=WRONG_TYPES)
def test_pods_with_a_wrong_type_anywhere(client: Client, data: st.DataObject, wrong: Any) -> None:
    path = data.draw(st.sampled_from(_paths(VALID_POD)))
    sent = review(PODS, "CREATE", _replaced(VALID_POD, path, wrong))
    status, payload = client.post(MUTATE_ID, json.dumps(sent).encode())
    check(status, payload, sent)
    assert status == 200
    response = json.loads(payload)["response"]
    assert response["allowed"] is True
    # Never the generic failure answer: a mistyped field is named, not an internal error.
    assert not any("internal error" in w for w in response.get("warnings", [])), response


@pytest.mark.parametrize(
    ("path", "wrong", "field"),
    [
        (("metadata",), None, "object.metadata must be an object"),
        (("metadata", "labels"), None, "object.metadata.labels must be a map of strings"),
        (("spec",), None, "spec: is missing"),
        (("spec", "jobManager"), "oops", "spec.jobManager: must be an object"),
        (("spec", "jobManager", "resource"), "oops", "spec.jobManager.resource: must be an object"),
        (("spec", "taskManager", "resource"), "oops", "spec.taskManager.resource: must be an object"),
        (("spec", "podTemplate", "spec", "containers"), "oops", "spec.podTemplate.spec.containers: must be a list"),
        (("spec", "podTemplate", "spec", "containers", 0, "env"), [1], "env[0]: must be an object with a name"),
        (("spec", "podTemplate", "spec", "containers", 0, "resources"), "x", "resources: must be an object"),
    ],
)
def test_mistyped_level_of_a_flinkdeployment_is_refused_naming_the_field(
    client: Client, path: tuple[Any, ...], wrong: Any, field: str
) -> None:
    sent = review(FD, "CREATE", _replaced(VALID_DEPLOYMENT, path, wrong))
    status, payload = client.post(VALIDATE_ID, json.dumps(sent).encode())
    check(status, payload, sent)
    response = json.loads(payload)["response"]
    assert response["allowed"] is False
    assert field in response["status"]["message"], response


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("metadata",), "object.metadata must be an object"),
        (("metadata", "labels"), "object.metadata.labels must be a map of strings"),
        (("spec",), "spec must be an object"),
        (("spec", "containers"), "spec.containers must be a list"),
        (("spec", "containers", 1, "env"), "spec.containers[1].env must be a list"),
        (("spec", "containers", 1, "resources"), "spec.containers[1].resources must be an object"),
    ],
)
def test_null_at_each_level_of_a_pod_is_admitted_unchanged_naming_the_field(
    client: Client, path: tuple[Any, ...], field: str
) -> None:
    wrong: Any = "oops" if path[-1] in ("spec", "containers", "env", "resources") else None
    sent = review(PODS, "CREATE", _replaced(VALID_POD, path, wrong))
    status, payload = client.post(MUTATE_ID, json.dumps(sent).encode())
    check(status, payload, sent)
    response = json.loads(payload)["response"]
    assert response["allowed"] is True and "patch" not in response
    assert any(field in w for w in response["warnings"]), response


def _big_deployment(target_bytes: int) -> dict[str, Any]:
    filler = "x" * 1000
    config = {f"pipeline.note-{i}": filler for i in range(target_bytes // 1030)}
    config["jobmanager.memory.heap.size"] = "1g"
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "big", "namespace": "fuzz"},
        "spec": {
            "flinkVersion": "v2_1",
            "flinkConfiguration": config,
            "jobManager": {"resource": {"memory": "2g"}},
            "taskManager": {"resource": {"memory": "2g"}},
        },
    }


def test_reviews_as_large_as_the_api_server_sends(client: Client) -> None:
    big = _big_deployment(int(1.45 * 1024 * 1024))
    for sent in (review(FD, "CREATE", big), review(FD, "UPDATE", big, big)):
        body = json.dumps(sent).encode()
        assert len(body) > 1.4 * 1024 * 1024
        status, payload = client.post(VALIDATE_ID, body)
        check(status, payload, sent)
        assert status == 200 and json.loads(payload)["response"]["allowed"] is True


def _replace_with(cluster: Cluster, namespace: str, change: dict[str, str]) -> Any:
    """Read-modify-replace, retried on conflicts with the controller's own annotation updates."""
    for _ in range(10):
        current = json.loads(cluster.kubectl("get", "flinkdeployment", "big", "-n", namespace, "-o", "json").stdout)
        current["spec"]["flinkConfiguration"].update(change)
        result = cluster.kubectl("replace", "-n", namespace, "-f", "-", input=json.dumps(current), check=False)
        if "the object has been modified" not in result.stderr:
            return result
    raise AssertionError("the object kept changing under the test")


def test_large_object_through_the_api_server(cluster: Cluster, namespace: str, client: Client) -> None:
    big = _big_deployment(int(1.2 * 1024 * 1024))
    big["metadata"] = {"name": "big"}
    created = cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(big), check=False)
    assert created.returncode == 0, created.stderr[-2000:]
    replaced = _replace_with(cluster, namespace, {"pipeline.note-0": "y" * 1000})
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    refused = _replace_with(cluster, namespace, {"jobmanager.memory.heap.size": "4g"})
    assert refused.returncode != 0 and "flinkmem refused" in refused.stderr
