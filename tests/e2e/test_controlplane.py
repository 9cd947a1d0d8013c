"""Smoke tests of the cluster the e2e suite runs against: the things later e2e tests rely on."""

from __future__ import annotations

import json
import secrets
import textwrap
from typing import Any

import pytest
from kubernetes import client

from localplane.controlplane import Cluster, pinned_versions, wait_until

pytestmark = pytest.mark.e2e

# Never pulled: without a kubelet Pods stay Pending anyway, and on kind the pull fails, also Pending.
UNPULLABLE_IMAGE = "registry.invalid/flinkmem/never-pulled:0"


def _get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _deployment(name: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {name}
        spec:
          replicas: 1
          selector:
            matchLabels: {{app: {name}}}
          template:
            metadata:
              labels: {{app: {name}}}
            spec:
              containers:
                - name: main
                  image: {UNPULLABLE_IMAGE}
        """
    )


def test_version_reports_the_pinned_release(cluster: Cluster) -> None:
    info = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert info["major"] == "1"
    if cluster.is_local:
        assert info["gitVersion"] == pinned_versions()["KUBERNETES_VERSION"]
        assert info["gitTreeState"] == "clean"


def test_readyz_is_ok(cluster: Cluster) -> None:
    assert cluster.kubectl("get", "--raw", "/readyz").stdout == "ok"


def test_namespace_is_created_and_deleted(cluster: Cluster) -> None:
    name = f"e2e-lifecycle-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    assert _get_json(cluster, "namespace", name)["status"]["phase"] == "Active"
    cluster.kubectl("create", "configmap", "content", "-n", name, "--from-literal=k=v")

    # kubectl waits until the namespace controller has emptied and finalized the namespace.
    cluster.kubectl("delete", "namespace", name, "--timeout=90s")
    gone = cluster.kubectl("get", "namespace", name, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


def test_deployment_yields_a_pending_pod(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("web"))

    pods = wait_until(
        lambda: _get_json(cluster, "pods", "-n", namespace, "-l", "app=web")["items"] or None,
        what="the Deployment's Pod",
    )
    assert len(pods) == 1
    pod = pods[0]
    assert pod["status"]["phase"] == "Pending"
    assert pod["spec"]["serviceAccountName"] == "default"
    if cluster.is_local:
        assert "nodeName" not in pod["spec"]  # no scheduler, no nodes

    (owner,) = pod["metadata"]["ownerReferences"]
    assert owner["kind"] == "ReplicaSet"
    replicaset = _get_json(cluster, "replicaset", owner["name"], "-n", namespace)
    assert replicaset["metadata"]["ownerReferences"][0]["kind"] == "Deployment"


def test_garbage_collector_removes_dependents(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("doomed"))
    wait_until(
        lambda: _get_json(cluster, "pods", "-n", namespace, "-l", "app=doomed")["items"] or None,
        what="the Deployment's Pod",
    )
    cluster.kubectl("delete", "deployment", "doomed", "-n", namespace, "--cascade=background")
    wait_until(
        lambda: not _get_json(cluster, "replicasets,pods", "-n", namespace, "-l", "app=doomed")["items"],
        what="the ReplicaSet and Pod to be collected",
    )


def test_crd_becomes_established_and_serves_custom_objects(cluster: Cluster, namespace: str) -> None:
    suffix = secrets.token_hex(3)
    group, plural, kind = "e2e.flinkmem.test", f"gadgets{suffix}", f"Gadget{suffix.upper()}"
    crd = textwrap.dedent(
        f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: {plural}.{group}
        spec:
          group: {group}
          scope: Namespaced
          names: {{plural: {plural}, singular: gadget{suffix}, kind: {kind}}}
          versions:
            - name: v1
              served: true
              storage: true
              schema:
                openAPIV3Schema:
                  type: object
                  properties:
                    spec:
                      type: object
                      required: [size]
                      properties:
                        size: {{type: integer, minimum: 1}}
        """
    )
    cluster.kubectl("apply", "-f", "-", input=crd)
    try:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.{group}", "--timeout=30s")

        def apply(size: int) -> Any:
            body = f"apiVersion: {group}/v1\nkind: {kind}\nmetadata: {{name: g{size}}}\nspec: {{size: {size}}}\n"
            return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=body, check=False)

        # kubectl may need a moment to see the new type in discovery.
        wait_until(lambda: apply(3).returncode == 0, what=f"a {kind} to be accepted")
        stored = _get_json(cluster, f"{plural}.{group}", "g3", "-n", namespace)
        assert stored["spec"] == {"size": 3}

        refused = apply(0)
        assert refused.returncode != 0
        assert "spec.size" in refused.stderr
    finally:
        cluster.kubectl("delete", "crd", f"{plural}.{group}", "--wait=false", "--ignore-not-found")


def test_rbac_refuses_an_unprivileged_service_account(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    with cluster.api_client() as api:
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
        response = client.CoreV1Api(api).create_namespaced_service_account_token("nobody", namespace, request)
    assert response.status is not None and response.status.token
    as_nobody = cluster.with_token(response.status.token, f"{namespace}-nobody")

    whoami = json.loads(as_nobody.kubectl("auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:nobody"

    refused = as_nobody.kubectl("get", "secrets", "-n", namespace, check=False)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()

    cluster.kubectl("create", "role", "read-configmaps", "-n", namespace, "--verb=get,list", "--resource=configmaps")
    cluster.kubectl(
        "create",
        "rolebinding",
        "nobody-reads-configmaps",
        "-n",
        namespace,
        "--role=read-configmaps",
        f"--serviceaccount={namespace}:nobody",
    )
    wait_until(
        lambda: as_nobody.kubectl("get", "configmaps", "-n", namespace, check=False).returncode == 0,
        what="the RoleBinding to take effect",
    )
    assert as_nobody.kubectl("get", "secrets", "-n", namespace, check=False).returncode != 0


def test_minted_client_certificate_authenticates_without_privileges(cluster: Cluster, namespace: str) -> None:
    if not cluster.is_local:
        pytest.skip("client certificates are minted with the local control plane's CA")
    alice = cluster.user("alice", groups=["e2e-testers"])
    whoami = json.loads(alice.kubectl("auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == "alice"
    assert "e2e-testers" in whoami["status"]["userInfo"]["groups"]
    refused = alice.kubectl("get", "pods", "-n", namespace, check=False)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()
