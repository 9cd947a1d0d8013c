"""The chart against a real kube-apiserver: every object accepted, and its RBAC exactly enough.

1. Every value set renders objects the API server accepts (``kubectl apply --dry-run=server``, with
   strict field validation and Pod Security warnings). cert-manager is not installed here, so the
   test creates stand-in CRDs for ``issuers``/``certificates.cert-manager.io`` (any spec accepted)
   when they are absent: for those two kinds only the API version, kind, scope and metadata are
   checked by the server; test_chart.py checks their spec. ``helm install``/``upgrade``/``uninstall``
   run for real too.
2. flinkmem runs as the chart's ServiceAccount, with only the chart's RBAC, through a whole scenario;
   its log must show no refused request. The same identity is refused what flinkmem must not do.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localplane.controlplane import Cluster, wait_until
from tests.e2e.test_webhooks import EXAMPLES, apply, container, flinkdeployment, jobmanager_deployment
from tests.packaging.chart import CHART, CRD_SOURCE, VALUE_SETS, find, helm, render, values_for
from tests.packaging.process import Flinkmem, running
from tests.support.operatorcrds import STAND_INS

pytestmark = pytest.mark.e2e

BLUEGREEN_STAND_IN = STAND_INS / "flinkbluegreendeployments.flink.apache.org.yaml"
STAND_IN_CRDS = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io", "labels": {"flinkmem.io/test-stand-in": "true"}},
        "spec": {
            "group": "cert-manager.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }
    for kind, plural in (("Issuer", "issuers"), ("Certificate", "certificates"))
]


def _crd_exists(cluster: Cluster, name: str) -> bool:
    return cluster.kubectl("get", "crd", name, check=False).returncode == 0


def _crd_gone(cluster: Cluster, name: str) -> bool:
    return not _crd_exists(cluster, name)


def _crd_terminating(cluster: Cluster, name: str) -> bool:
    result = cluster.kubectl("get", "crd", name, "-o", "jsonpath={.metadata.deletionTimestamp}", check=False)
    return result.returncode == 0 and bool(result.stdout.strip())


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    """cert-manager stand-ins, the chart's kopf peering CRDs, the FlinkDeployment CRD and the stand-in of the
    operator's FlinkBlueGreenDeployment CRD (tests/support/crds/), created if absent.

    They are left installed, as the e2e suite leaves the FlinkDeployment CRD: a CRD deleted right after
    it was created can stay Terminating for minutes ("storage is (re)initializing"), refusing objects
    of its kind to the next test session meanwhile.
    """
    peering = [o for o in yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text()) if o]
    bluegreen = yaml.safe_load((BLUEGREEN_STAND_IN).read_text())
    for crd in [*STAND_IN_CRDS, *peering, yaml.safe_load(CRD_SOURCE.read_text()), bluegreen]:
        name = crd["metadata"]["name"]
        if _crd_terminating(cluster, name):
            gone = functools.partial(_crd_gone, cluster, name)
            wait_until(gone, timeout=240, what=f"CRD {name} to finish deleting")
        if not _crd_exists(cluster, name):
            cluster.kubectl("create", "--save-config", "-f", "-", input=json.dumps(crd))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s")


def _as_yaml(objs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_the_api_server_accepts_every_rendered_object(cluster: Cluster, namespace: str, crds: None, name: str) -> None:
    # The release namespace warns about anything that breaks the restricted Pod Security Standard.
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted")
    values = values_for(name)
    if "watchNamespaces" in values:
        values["watchNamespaces"] = ["default", namespace]
    objs = render(values, release="flinkmem", namespace=namespace, include_crds=True)
    # Server-side apply: the server validates fields strictly; no client-side last-applied bookkeeping.
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=flinkmem-packaging-test",
        "--dry-run=server",
        "-f",
        "-",
        input=_as_yaml(objs),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"warnings from the API server:\n{result.stderr}"
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(objs), result.stdout


def test_helm_installs_upgrades_and_uninstalls_the_chart(
    cluster: Cluster, namespace: str, crds: None, tmp_path: Path
) -> None:
    # Watching only the release namespace, which the webhooks always exclude: the configurations this
    # release registers match nothing, so other tests on the same cluster are never sent to it.
    release = f"flinkmem-{secrets.token_hex(3)}"
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"watchNamespaces": [namespace], "tls": {"mode": "helm"}}))
    target = ["--namespace", namespace, "--kubeconfig", str(cluster.kubeconfig)]
    installed = helm("install", release, str(CHART), *target, "--values", str(values))
    try:
        assert f"kubectl delete validatingwebhookconfiguration {release}" in installed.stdout  # NOTES.txt
        secret = _get(cluster, namespace, "secret", f"{release}-tls")
        assert secret is not None
        assert _get(cluster, namespace, "kopfpeering", "flinkmem") is not None

        # The pods pass the namespace's restricted Pod Security level (they stay Pending: no nodes here).
        def pods() -> list[dict[str, Any]] | None:
            selector = f"app.kubernetes.io/instance={release}"
            out = cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
            items: list[dict[str, Any]] = json.loads(out)["items"]
            return items if len(items) == 2 else None

        wait_until(pods, what="two flinkmem pods admitted")

        helm("upgrade", release, str(CHART), *target, "--reuse-values", "--set", "replicas=3")
        kept = _get(cluster, namespace, "secret", f"{release}-tls")
        assert kept is not None and kept["data"] == secret["data"], "helm upgrade must not rotate the certificate"
        validating = json.loads(cluster.kubectl("get", "validatingwebhookconfiguration", release, "-o", "json").stdout)
        assert validating["webhooks"][0]["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
        deployment = _get(cluster, namespace, "deployment", release)
        assert deployment is not None and deployment["spec"]["replicas"] == 3
    finally:
        helm("uninstall", release, *target, check=False)
    for kind in ("clusterrole", "clusterrolebinding", "validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        assert cluster.kubectl("get", kind, release, check=False).returncode != 0, f"{kind} {release} left behind"
    assert _crd_exists(cluster, "clusterkopfpeerings.kopf.dev"), "Helm never deletes crds/"


@dataclass
class Scenario:
    admin: Cluster
    flinkmem_identity: Cluster
    user: str
    release: str
    release_namespace: str
    namespace: str
    flinkmem: Flinkmem


def _rbac_objects(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    return [o for o in objs if o["kind"] in kinds]


def _url_webhooks(objs: list[dict[str, Any]], base_url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """The chart's webhook configurations, calling ``base_url`` instead of the in-cluster Service."""
    configs = []
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        config = json.loads(json.dumps(find(objs, kind)))
        config["metadata"].pop("annotations", None)
        for webhook in config["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": base_url + path, "caBundle": base64.b64encode(ca_pem).decode()}
        configs.append(config)
    return configs


def _bare_jobmanager_pod(name: str, app: str) -> dict[str, Any]:
    labels = {"app": app, "component": "jobmanager", "type": "flink-native-kubernetes"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.1"}]},
    }


@pytest.fixture(scope="module")
def scenario(cluster: Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    suffix = secrets.token_hex(3)
    release = release_namespace = f"flinkmem-rbac-{suffix}"
    namespace = f"rbac-workload-{suffix}"
    objs = render(release=release, namespace=release_namespace)
    account = find(objs, "ServiceAccount")["metadata"]["name"]
    user = f"system:serviceaccount:{release_namespace}:{account}"
    webhooks: list[dict[str, Any]] = []
    try:
        for name in (release_namespace, namespace):
            cluster.kubectl("create", "namespace", name)
        cluster.kubectl("apply", "-f", "-", input=_as_yaml(_rbac_objects(objs)))
        token = cluster.kubectl("create", "token", account, "-n", release_namespace, "--duration=1h").stdout.strip()
        identity = cluster.with_token(token, release)
        # Made before flinkmem and its webhooks exist: a JobManager pod that was never sized.
        wait_until(lambda: cluster.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0)
        assert apply(cluster, namespace, flinkdeployment("drifty", {}, memory="2g")).returncode == 0
        assert apply(cluster, namespace, _bare_jobmanager_pod("drifty-jm", "drifty")).returncode == 0

        main = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in main["env"] if "value" in e}
        env["POD_ID"] = f"{release}-0"
        workdir = tmp_path_factory.mktemp("flinkmem-rbac")
        with running(identity.kubeconfig, workdir, env, main.get("args", [])) as flinkmem:
            webhooks = _url_webhooks(objs, flinkmem.webhook_url, flinkmem.ca_file.read_bytes())
            cluster.kubectl("create", "-f", "-", input=_as_yaml(webhooks))
            conflict = (EXAMPLES / "10-conflict-heap-larger-than-process.yaml").read_text()
            wait_until(
                lambda: (
                    "flinkmem refused"
                    in cluster.kubectl(
                        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=conflict, check=False
                    ).stderr
                ),
                what="the validating webhook in place",
            )
            yield Scenario(cluster, identity, user, release, release_namespace, namespace, flinkmem)
            for config in webhooks:  # before flinkmem stops: nothing may call a dead webhook
                cluster.kubectl("delete", config["kind"], config["metadata"]["name"], "--ignore-not-found")
            webhooks = []
    finally:
        for config in webhooks:
            cluster.kubectl("delete", config["kind"], config["metadata"]["name"], "--ignore-not-found", check=False)
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", release, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", release_namespace, namespace, "--wait=false", "--ignore-not-found")


def _events(cluster: Cluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", f"reason={reason}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def _get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_the_chart_rbac_is_enough_for_a_whole_scenario(scenario: Scenario) -> None:
    admin, ns = scenario.admin, scenario.namespace

    # A valid FlinkDeployment: admitted, annotated by the controller, with a Normal Event.
    assert apply(admin, ns, flinkdeployment("good", {"jobmanager.memory.heap.size": "1g"}, memory="2g")).returncode == 0

    def annotation() -> str | None:
        obj = _get(admin, ns, "flinkdeployment", "good") or {}
        found: str | None = obj.get("metadata", {}).get("annotations", {}).get("flinkmem.io/resolved-memory")
        return found

    assert json.loads(wait_until(annotation, what="the resolved-memory annotation"))["valid"] is True
    resolved = wait_until(lambda: _events(admin, ns, "MemoryResolved"), what="a MemoryResolved event")
    assert {e["involvedObject"]["name"] for e in resolved} >= {"good"}

    # A conflicting one: refused by the validating webhook.
    refused = apply(admin, ns, EXAMPLES / "10-conflict-heap-larger-than-process.yaml")
    assert refused.returncode != 0
    assert 'admission webhook "validate-flinkdeployment.flinkmem.io" denied the request' in refused.stderr

    # A blue/green deployment: its template refused in conflict, annotated when valid.
    good = flinkdeployment("x", {"jobmanager.memory.heap.size": "1g"}, memory="2g")["spec"]
    bad = flinkdeployment("x", {"jobmanager.memory.heap.size": "4g"}, memory="2g")["spec"]
    for name, template in (("bg-bad", bad), ("bg-good", good)):
        bluegreen = {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkBlueGreenDeployment",
            "metadata": {"name": name},
            "spec": {"template": {"spec": template}},
        }
        result = apply(admin, ns, bluegreen)
        assert (result.returncode == 0) == (name == "bg-good"), result.stderr
    assert 'webhook "validate-flinkbluegreendeployment.flinkmem.io" denied the request' in refused_bg(admin, ns)

    def bluegreen_annotation() -> str | None:
        obj = _get(admin, ns, "flinkbluegreendeployment", "bg-good") or {}
        found: str | None = obj.get("metadata", {}).get("annotations", {}).get("flinkmem.io/resolved-memory")
        return found

    assert json.loads(wait_until(bluegreen_annotation, what="the blue/green deployment's annotation"))["valid"]

    # A pod that opts in by label: sized on creation, and kubectl shows no "left unchanged" warning
    # (an owner lookup refused by RBAC would only show up there, as a warning, since pods fail open).
    opted_in = _bare_jobmanager_pod("opted-in", "good")
    opted_in["metadata"]["labels"] = {"app": "good", "component": "jobmanager", "flinkmem.io/opt-in": "true"}
    created = apply(admin, ns, opted_in)
    assert created.returncode == 0 and "unchanged" not in created.stderr, created.stderr
    pod = _get(admin, ns, "pod", "opted-in")
    assert pod is not None and "flinkmem.io/jvm-flags" in pod["metadata"].get("annotations", {})

    # A JobManager Deployment: its pod, made by the ReplicaSet controller, is sized by the mutating webhook.
    assert apply(admin, ns, jobmanager_deployment("good")).returncode == 0

    def sized_pod() -> dict[str, Any] | None:
        out = admin.kubectl("get", "pods", "-n", ns, "-l", "app=good,component=jobmanager", "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items[0] if items else None

    sized = wait_until(sized_pod, what="the JobManager pod")
    main = container(sized, "flink-main-container")
    assert sized["metadata"]["annotations"]["flinkmem.io/jvm-flags"].startswith("-Xmx")
    assert main["resources"]["limits"]["memory"] == main["resources"]["requests"]["memory"]

    # The pod made before flinkmem existed is reported as drift.
    drift = wait_until(lambda: _events(admin, ns, "MemoryDrift"), what="a MemoryDrift event")
    assert "drifty-jm" in drift[0]["message"]

    log = scenario.flinkmem.log()
    # A status of 403, not the digits inside a port number that flinkmem logs (https://127.0.0.1:38403).
    for refusal in (r"(?<!\d)403(?!\d)", "Forbidden", "forbidden", "Not enough permissions"):
        assert not re.search(refusal, log), f"flinkmem was refused something ({refusal!r}):\n{log[-4000:]}"
    assert scenario.flinkmem.process.poll() is None


def refused_bg(admin: Cluster, ns: str) -> str:
    """The refusal of a blue/green deployment whose template is in conflict, as kubectl prints it."""
    bad = flinkdeployment("x", {"jobmanager.memory.heap.size": "4g"}, memory="2g")["spec"]
    obj = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkBlueGreenDeployment",
        "metadata": {"name": "bg-refused"},
        "spec": {"template": {"spec": bad}},
    }
    result = apply(admin, ns, obj, "--dry-run=server")
    assert result.returncode != 0
    return str(result.stderr)


def _can_i(identity: Cluster, *args: str) -> bool:
    result = identity.kubectl("auth", "can-i", *args, check=False)
    return result.stdout.strip() == "yes"


def test_the_service_account_may_do_only_what_flinkmem_does(scenario: Scenario) -> None:
    me, ns = scenario.flinkmem_identity, scenario.namespace
    allowed = [
        ("get", "flinkdeployments.flink.apache.org", "-n", ns),
        ("watch", "flinkdeployments.flink.apache.org", "--all-namespaces"),
        ("patch", "flinkdeployments.flink.apache.org", "-n", ns),
        ("watch", "pods", "--all-namespaces"),
        ("list", "pods", "-n", ns),
        # Flink's own flink-config-<cluster-id> ConfigMaps configure pods without a FlinkDeployment.
        ("get", "configmaps", "-n", ns),
        ("watch", "configmaps", "--all-namespaces"),
        ("create", "events", "-n", ns),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ("watch", "clusterkopfpeerings.kopf.dev"),
        ("patch", "clusterkopfpeerings.kopf.dev/flinkmem"),
        ("watch", "flinkbluegreendeployments.flink.apache.org", "--all-namespaces"),
        ("patch", "flinkbluegreendeployments.flink.apache.org", "-n", ns),
    ]
    refused = [
        ("get", "secrets", "-n", ns),
        ("get", "pods", "-n", ns),
        ("patch", "events", "-n", ns),
        ("create", "events.events.k8s.io", "-n", ns),
        ("list", "secrets", "-n", scenario.release_namespace),
        ("update", "configmaps", "-n", ns),
        ("delete", "pods", "-n", ns),
        ("create", "pods", "-n", ns),
        ("patch", "pods", "-n", ns),
        ("create", "pods", "--subresource=eviction", "-n", ns),
        ("create", "flinkdeployments.flink.apache.org", "-n", ns),
        ("update", "flinkdeployments.flink.apache.org", "-n", ns),
        ("delete", "flinkdeployments.flink.apache.org", "-n", ns),
        ("patch", "flinkdeployments.flink.apache.org", "--subresource=status", "-n", ns),
        ("create", "flinkbluegreendeployments.flink.apache.org", "-n", ns),
        ("update", "flinkbluegreendeployments.flink.apache.org", "-n", ns),
        ("delete", "flinkbluegreendeployments.flink.apache.org", "-n", ns),
        ("patch", "flinkbluegreendeployments.flink.apache.org", "--subresource=status", "-n", ns),
        ("patch", "clusterkopfpeerings.kopf.dev/someone-else"),
        ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
        ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
    ]
    assert [a for a in allowed if not _can_i(me, *a)] == []
    assert [r for r in refused if _can_i(me, *r)] == []

    # And real requests get HTTP 403.
    with me.api_client() as api:
        core = client.CoreV1Api(api)
        attempts: dict[str, Callable[[], object]] = {
            "read secrets": lambda: core.list_namespaced_secret(ns),
            "delete a pod": lambda: core.delete_namespaced_pod("drifty-jm", ns),
            "evict a pod": lambda: core.create_namespaced_pod_eviction(
                "drifty-jm", ns, client.V1Eviction(metadata=client.V1ObjectMeta(name="drifty-jm", namespace=ns))
            ),
        }
        for what, attempt in attempts.items():
            with pytest.raises(ApiException) as refusal:
                attempt()
            assert refusal.value.status == 403, what
    assert _get(scenario.admin, ns, "pod", "drifty-jm") is not None


def test_spec_writes_by_flinkmem_own_identity_are_refused(scenario: Scenario) -> None:
    # RBAC cannot tell a spec patch from an annotation patch; flinkmem's own webhook can.
    me, admin, ns = scenario.flinkmem_identity, scenario.admin, scenario.namespace
    assert apply(admin, ns, flinkdeployment("mine", {}, memory="2g")).returncode == 0
    spec_patch = json.dumps({"spec": {"jobManager": {"resource": {"memory": "3g"}}}})
    mine = me.kubectl("patch", "flinkdeployment", "mine", "-n", ns, "--type=merge", "-p", spec_patch, check=False)
    assert mine.returncode != 0
    assert "flinkmem never writes spec" in mine.stderr
    assert scenario.user in mine.stderr
    stored = _get(admin, ns, "flinkdeployment", "mine")
    assert stored is not None and stored["spec"]["jobManager"]["resource"]["memory"] == "2g"
    annotated = me.kubectl("annotate", "flinkdeployment", "mine", "-n", ns, "example.com/note=ok", check=False)
    assert annotated.returncode == 0, annotated.stderr
    theirs = admin.kubectl("patch", "flinkdeployment", "mine", "-n", ns, "--type=merge", "-p", spec_patch, check=False)
    assert theirs.returncode == 0, theirs.stderr


def test_evict_drifted_grants_pod_eviction_and_nothing_else(scenario: Scenario) -> None:
    admin, me, ns = scenario.admin, scenario.flinkmem_identity, scenario.namespace
    default_role = find(render(release=scenario.release, namespace=scenario.release_namespace), "ClusterRole")
    evicting = render(values_for("evict"), release=scenario.release, namespace=scenario.release_namespace)
    admin.kubectl("apply", "-f", "-", input=_as_yaml([find(evicting, "ClusterRole")]))
    try:
        assert wait_until(lambda: _can_i(me, "create", "pods", "--subresource=eviction", "-n", ns))
        assert not _can_i(me, "delete", "pods", "-n", ns)
        with me.api_client() as api:
            body = client.V1Eviction(metadata=client.V1ObjectMeta(name="drifty-jm", namespace=ns))
            client.CoreV1Api(api).create_namespaced_pod_eviction("drifty-jm", ns, body)
        wait_until(lambda: _get(admin, ns, "pod", "drifty-jm") is None, what="the evicted pod gone")
    finally:
        admin.kubectl("apply", "-f", "-", input=_as_yaml([default_role]))
    assert wait_until(lambda: not _can_i(me, "create", "pods", "--subresource=eviction", "-n", ns))
