"""The Helm chart, rendered offline: lint, Kubernetes schemas, and what each value does to the objects.

Built-in kinds are validated against the Kubernetes 1.36 OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail). cert-manager and kopf objects are custom kinds with no schema there;
they are checked against the fields cert-manager and kopf read (``check_custom_object``).
"""

from __future__ import annotations

import base64
import datetime
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from flinkmem.cli import build_parser
from flinkmem.conventions import PEERING_NAME
from flinkmem.decisions.policy import ValidationMode
from flinkmem.runtime.settings import (
    DEFAULT_BLUEGREEN_RESOURCE,
    DEFAULT_RESOURCE,
    ResourceRef,
    Settings,
    from_arguments,
)
from flinkmem.runtime.webhookconfig import mutating_configuration, validating_configuration
from tests.packaging.chart import (
    CHART,
    CRD_SOURCE,
    MANIFESTS,
    VALUE_SETS,
    Permission,
    find,
    helm,
    kinds,
    kube_version,
    permissions,
    render,
    values_for,
)

CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("kopf.dev/v1", "ClusterKopfPeering"),
    ("kopf.dev/v1", "KopfPeering"),
}
SERVICE_ACCOUNT = "system:serviceaccount:flinkmem:flinkmem"
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(h|m|s))+$")


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(h|m|s)", duration))


def check_custom_object(obj: Mapping[str, Any], all_objects: list[dict[str, Any]]) -> None:
    """What cert-manager and kopf need from the objects the chart gives them."""
    kind, meta, spec = obj["kind"], obj["metadata"], obj.get("spec") or {}
    if kind == "Issuer":
        assert meta.get("namespace"), "an Issuer is namespaced"
        assert len(spec) == 1 and ("selfSigned" in spec or "ca" in spec), spec
        if "ca" in spec:
            secret = spec["ca"]["secretName"]
            ca_certs = [o for o in all_objects if o["kind"] == "Certificate" and o["spec"]["secretName"] == secret]
            assert ca_certs and ca_certs[0]["spec"].get("isCA") is True, f"no CA Certificate writes {secret}"
    elif kind == "Certificate":
        assert meta.get("namespace"), "a Certificate is namespaced"
        assert spec["secretName"]
        ref = spec["issuerRef"]
        assert ref["name"] and ref.get("kind", "Issuer") in ("Issuer", "ClusterIssuer")
        if ref.get("kind", "Issuer") == "Issuer" and not ref["name"].startswith("corp-"):
            find(all_objects, "Issuer", ref["name"])  # the chart's own issuer must be rendered too
        if spec.get("isCA"):
            assert spec["commonName"]
        else:
            assert spec["dnsNames"], "a serving certificate needs DNS names"
        for key in ("duration", "renewBefore"):
            assert GO_DURATION.match(spec[key]), f"{key}={spec[key]!r} is not a Go duration"
        assert _seconds(spec["renewBefore"]) < _seconds(spec["duration"])
    elif kind == "ClusterKopfPeering":
        assert meta["name"] == "flinkmem" and "namespace" not in meta and "spec" not in obj
    elif kind == "KopfPeering":
        assert meta["name"] == "flinkmem" and meta.get("namespace") and "spec" not in obj
    else:
        raise AssertionError(f"no check for {kind}")


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    pod_spec = find(objs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["containers"]] == ["flinkmem"]
    found: dict[str, Any] = pod_spec["containers"][0]
    return found


def settings_of(objs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings `flinkmem serve` builds inside the rendered container (ENTRYPOINT + args + env)."""
    main = container(objs)
    for key in [k for k in os.environ if k.startswith("FLINKMEM_")]:
        monkeypatch.delenv(key)
    for env in main["env"]:
        if "value" in env:
            monkeypatch.setenv(env["name"], env["value"])
    args = build_parser().parse_args(["serve", *main.get("args", [])])
    return from_arguments(args)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_is_clean(name: str, tmp_path: Any) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(values_for(name)))
    result = helm("lint", str(CHART), "--strict", "--kube-version", kube_version(), "--values", str(values))
    assert "0 chart(s) failed" in result.stdout, result.stdout


def test_the_validator_is_strict() -> None:
    # Guards the test below against validating nothing: an unknown field must fail.
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, kube_version().lstrip("v"), strict=True)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_rendered_object_is_valid(name: str) -> None:
    objs = render(values_for(name), include_crds=True)
    assert len(objs) >= 10
    for obj in objs:
        label = f"{obj['kind']} {obj['metadata'].get('name')}"
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            check_custom_object(obj, objs)
            continue
        try:
            kubernetes_validate.validate(obj, kube_version().lstrip("v"), strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{label} does not match the Kubernetes schema: {exc.message}") from None
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names)), "an object is rendered twice"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("default", {}),
        ("warn", {"validation_mode": ValidationMode.WARN}),
        ("audit", {"validation_mode": ValidationMode.AUDIT}),
        ("no-pod-mutation", {"pod_mutation": False}),
        ("evict", {"evict_drifted": True}),
        ("watch-namespaces", {"namespaces": ("team-a", "team-b")}),
        ("custom-resource", {"resource": ResourceRef("flink.example.com", "v1", "flinkclusters")}),
        ("no-bluegreen", {"bluegreen_resource": None}),
        (
            "hardened",
            {
                "excluded_namespaces": ("kube-system", "kube-public", "platform", "flinkmem"),
                "tls_min_version": "1.2",
                "client_ca_file": Path("/etc/flinkmem/client-ca/ca.crt"),
                "client_names": ("kube-apiserver-webhook-client",),
            },
        ),
        (
            "tuned",
            {
                "container_name": "jobmanager",
                "webhook_port": 8443,
                "health_port": 9090,
                "controller_qps": 2.5,
                "controller_burst": 5,
            },
        ),
    ],
)
def test_values_reach_flinkmem_serve(name: str, expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_of(render(values_for(name)), monkeypatch)
    defaults: dict[str, Any] = {
        "resource": DEFAULT_RESOURCE,
        "bluegreen_resource": DEFAULT_BLUEGREEN_RESOURCE,
        "namespaces": (),
        "validation_mode": ValidationMode.ENFORCE,
        "pod_mutation": True,
        "evict_drifted": False,
        "container_name": "flink-main-container",
        "webhook_port": 9443,
        "health_port": 8080,
        "bind_address": "0.0.0.0",
        "service_account": SERVICE_ACCOUNT,
        "register_url": None,
        "install_crd": False,
        "self_signed_dir": None,
        "controller_qps": 10.0,
        "controller_burst": 30,
        "excluded_namespaces": ("kube-system", "flinkmem"),
        "tls_min_version": "1.3",
        "client_ca_file": None,
        "client_names": (),
    }
    for field, value in {**defaults, **expected}.items():
        assert getattr(settings, field) == value, field
    assert str(settings.tls_cert_file) == "/etc/flinkmem/tls/tls.crt"
    assert str(settings.tls_key_file) == "/etc/flinkmem/tls/tls.key"


def test_the_deployment_is_highly_available_and_hardened() -> None:
    objs = render()
    deployment = find(objs, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    main = container(objs)
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    for constraint in pod["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"webhook": 9443, "health": 8080}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert set(main["resources"]["requests"]) == {"cpu", "memory"}
    assert set(main["resources"]["limits"]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = main["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in security
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    assert mounts["tls"] == {"name": "tls", "mountPath": "/etc/flinkmem/tls", "readOnly": True}
    assert mounts["tmp"]["mountPath"] == "/tmp"  # the only writable path of the image
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "flinkmem-tls"
    assert "emptyDir" in volumes["tmp"]
    assert pod["serviceAccountName"] == find(objs, "ServiceAccount")["metadata"]["name"]
    env = {e["name"]: e for e in main["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # kopf's peering identity
    assert env["FLINKMEM_SERVICE_ACCOUNT"]["value"] == SERVICE_ACCOUNT


def test_service_and_disruption_budget_select_the_pods() -> None:
    objs = render()
    pod_labels = find(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = find(objs, "Service", "flinkmem")
    https = next(p for p in service["spec"]["ports"] if p["name"] == "https")
    assert (https["port"], https["targetPort"]) == (443, "webhook")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = find(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "PodDisruptionBudget" not in kinds(render(values_for("tuned")))


def _without_client_config(webhook: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in webhook.items() if k not in ("clientConfig", "matchPolicy")}


@pytest.mark.parametrize("name", ["default", "custom-resource", "no-bluegreen"])
def test_webhooks_are_the_ones_flinkmem_registers_in_development(name: str) -> None:
    objs = render(values_for(name))
    resource = ResourceRef(**values_for(name)["resource"]) if "resource" in values_for(name) else DEFAULT_RESOURCE
    validating = find(objs, "ValidatingWebhookConfiguration", "flinkmem")
    mutating = find(objs, "MutatingWebhookConfiguration", "flinkmem")
    reference_v = validating_configuration(
        resource,
        "https://x",
        "ca",
        excluded=("kube-system", "flinkmem"),
        own_identity="system:serviceaccount:flinkmem:flinkmem",
        bluegreen=None if name == "no-bluegreen" else DEFAULT_BLUEGREEN_RESOURCE,
    )
    reference_m = mutating_configuration(
        "https://x",
        "ca",
        ("kube-system", "flinkmem"),
        resource=resource,
        own_identity="system:serviceaccount:flinkmem:flinkmem",
    )
    assert [_without_client_config(w) for w in validating["webhooks"]] == [
        _without_client_config(w) for w in reference_v["webhooks"]
    ]
    assert [_without_client_config(w) for w in mutating["webhooks"]] == [
        _without_client_config(w) for w in reference_m["webhooks"]
    ]
    paths = {
        "validate-flinkdeployment.flinkmem.io": "/validate-flinkdeployment",
        "validate-flinkbluegreendeployment.flinkmem.io": "/validate-flinkbluegreendeployment",
    }
    paths |= {w["name"]: "/mutate-flink-pod" for w in mutating["webhooks"]}
    paths["record-flinkdeployment.flinkmem.io"] = "/record-flinkdeployment"
    for webhook in validating["webhooks"] + mutating["webhooks"]:
        assert webhook["clientConfig"]["service"] == {
            "name": "flinkmem",
            "namespace": "flinkmem",
            "path": paths[webhook["name"]],
            "port": 443,
        }
        assert webhook["timeoutSeconds"] == 5
        assert webhook["admissionReviewVersions"] == ["v1"]
    assert validating["webhooks"][0]["failurePolicy"] == "Fail"
    # A refused update posts a MemoryRefused Event, never on a dry run.
    assert validating["webhooks"][0]["sideEffects"] == "NoneOnDryRun"
    assert {w["failurePolicy"] for w in mutating["webhooks"]} == {"Ignore"}
    # The record webhook only writes the object it is asked about; the pod webhooks may post an Event.
    assert [w["sideEffects"] for w in mutating["webhooks"]] == ["None", "NoneOnDryRun", "NoneOnDryRun"]


def test_watched_namespaces_narrow_the_webhooks() -> None:
    objs = render(values_for("watch-namespaces"))
    for config in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for webhook in find(objs, config)["webhooks"]:
            expressions = webhook["namespaceSelector"]["matchExpressions"]
            assert {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]} in (
                expressions
            )
            assert {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", "flinkmem"],
            } in (expressions)


def test_no_pod_mutation_means_no_pod_webhook() -> None:
    objs = render(values_for("no-pod-mutation"))
    # Only the FlinkDeployment record webhook is left: no pod reaches flinkmem.
    mutating = find(objs, "MutatingWebhookConfiguration", "flinkmem")
    assert [w["name"] for w in mutating["webhooks"]] == ["record-flinkdeployment.flinkmem.io"]
    assert all("pods" not in rule["resources"] for w in mutating["webhooks"] for rule in w["rules"])
    assert "ValidatingWebhookConfiguration" in kinds(objs)


@pytest.mark.parametrize("name", ["default", "cluster-issuer"])
def test_cert_manager_issues_the_serving_certificate_and_injects_its_ca(name: str) -> None:
    objs = render(values_for(name))
    certificate = find(objs, "Certificate", "flinkmem-serving")
    assert certificate["spec"]["dnsNames"] == ["flinkmem.flinkmem.svc", "flinkmem.flinkmem.svc.cluster.local"]
    volume = next(v for v in find(objs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    assert certificate["spec"]["secretName"] == volume["secret"]["secretName"]
    for config in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        obj = find(objs, config)
        assert obj["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": "flinkmem/flinkmem-serving"}
        assert all("caBundle" not in w["clientConfig"] for w in obj["webhooks"])
    if name == "default":
        # selfSigned Issuer -> CA Certificate -> CA Issuer -> serving Certificate
        assert certificate["spec"]["issuerRef"] == {"name": "flinkmem-ca", "kind": "Issuer", "group": "cert-manager.io"}
        assert find(objs, "Issuer", "flinkmem-ca")["spec"] == {"ca": {"secretName": "flinkmem-ca"}}
        ca = find(objs, "Certificate", "flinkmem-ca")
        assert ca["spec"]["isCA"] is True and ca["spec"]["issuerRef"]["name"] == "flinkmem-selfsigned"
        assert find(objs, "Issuer", "flinkmem-selfsigned")["spec"] == {"selfSigned": {}}
    else:
        assert certificate["spec"]["issuerRef"] == {
            "name": "corp-ca",
            "kind": "ClusterIssuer",
            "group": "cert-manager.io",
        }
        assert [o for o in objs if o["kind"] == "Issuer"] == []
        assert [o["metadata"]["name"] for o in objs if o["kind"] == "Certificate"] == ["flinkmem-serving"]


def test_helm_generated_tls_is_a_working_chain() -> None:
    objs = render(values_for("helm-tls"))
    assert not {"Issuer", "Certificate"} & set(kinds(objs))
    secret = find(objs, "Secret", "flinkmem-tls")
    assert secret["type"] == "kubernetes.io/tls"
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {"flinkmem.flinkmem.svc", "flinkmem.flinkmem.svc.cluster.local"} <= set(sans)
    assert cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=365)
    bundles = {
        w["clientConfig"]["caBundle"]
        for config in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
        for w in find(objs, config)["webhooks"]
    }
    assert bundles == {secret["data"]["ca.crt"]}, "every webhook must trust the CA that signed the Secret"
    for config in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert "annotations" not in find(objs, config)["metadata"]


def test_an_existing_secret_and_its_ca() -> None:
    values = values_for("secret-tls")
    objs = render(values)
    assert not {"Issuer", "Certificate", "Secret"} & set(kinds(objs))
    volume = next(v for v in find(objs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "corp-flinkmem-tls"
    webhooks = (
        find(objs, "ValidatingWebhookConfiguration")["webhooks"]
        + find(objs, "MutatingWebhookConfiguration")["webhooks"]
    )
    assert {w["clientConfig"]["caBundle"] for w in webhooks} == {values["tls"]["secret"]["caBundle"]}


def _cluster(*rules: tuple[str, str, str, str]) -> set[Permission]:
    return {("*", group, resource, verb, name) for group, resource, verb, name in rules}


def _verbs(group: str, resource: str, *verbs: str, name: str = "*") -> list[tuple[str, str, str, str]]:
    return [(group, resource, verb, name) for verb in verbs]


FRAMEWORK = _cluster(*_verbs("apiextensions.k8s.io", "customresourcedefinitions", "list", "watch"))
CLUSTER_PEERING = _cluster(
    *_verbs("kopf.dev", "clusterkopfpeerings", "list", "watch"),
    *_verbs("kopf.dev", "clusterkopfpeerings", "patch", name="flinkmem"),
)


def _workload(
    group: str = "flink.apache.org", plural: str = "flinkdeployments", bluegreen: bool = True
) -> list[tuple[str, str, str, str]]:
    return [
        *_verbs(group, plural, "get", "list", "watch", "patch"),
        # The Apache operator's blue/green deployments: watched, and patched for the annotation only.
        *(_verbs("flink.apache.org", "flinkbluegreendeployments", "list", "watch", "patch") if bluegreen else []),
        *_verbs("", "pods", "list", "watch"),
        # Flink's flink-config-<cluster-id> ConfigMaps: the source of pods without a FlinkDeployment.
        *_verbs("", "configmaps", "get", "list", "watch"),
        # Events are only ever created (flinkmem's and kopf's, both through the core v1 API).
        *_verbs("", "events", "create"),
    ]


def _in(namespace: str, rules: list[tuple[str, str, str, str]]) -> set[Permission]:
    return {(namespace, *rule) for rule in rules}


EXPECTED_RBAC: dict[str, set[Permission]] = {
    "default": FRAMEWORK | CLUSTER_PEERING | _cluster(*_workload()),
    "evict": FRAMEWORK | CLUSTER_PEERING | _cluster(*_workload(), ("", "pods/eviction", "create", "*")),
    # Eviction only ever happens in enforce mode, so warn mode gets no eviction right.
    "evict-in-warn-mode": FRAMEWORK | CLUSTER_PEERING | _cluster(*_workload()),
    "no-peering": FRAMEWORK | _cluster(*_workload()),
    "custom-resource": FRAMEWORK | CLUSTER_PEERING | _cluster(*_workload("flink.example.com", "flinkclusters")),
    "no-bluegreen": FRAMEWORK | CLUSTER_PEERING | _cluster(*_workload(bluegreen=False)),
    "watch-namespaces": FRAMEWORK
    | _cluster(*_verbs("", "namespaces", "list", "watch"))
    | {
        perm
        for ns in ("team-a", "team-b")
        for perm in _in(
            ns,
            [
                *_verbs("kopf.dev", "kopfpeerings", "list", "watch"),
                *_verbs("kopf.dev", "kopfpeerings", "patch", name="flinkmem"),
                *_workload(),
            ],
        )
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_RBAC))
def test_rbac_grants_exactly_what_flinkmem_uses(name: str) -> None:
    objs = render(values_for(name))
    assert permissions(objs, "flinkmem", "flinkmem") == EXPECTED_RBAC[name]
    for obj in objs:
        for rule in obj.get("rules", []):
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), f"wildcard in {obj['kind']} {obj['metadata']['name']}"
            assert "secrets" not in rule.get("resources", [])


def test_bundled_crd_copies_are_identical() -> None:
    source = CRD_SOURCE.read_bytes()
    copies = [
        CHART / "files" / "flinkdeployments-crd.yaml",
        MANIFESTS / "crd" / "flinkdeployments.flink.apache.org.yaml",
    ]
    for copy in copies:
        assert copy.read_bytes() == source, f"{copy} differs from {CRD_SOURCE}"


def test_the_crd_is_installed_only_when_asked() -> None:
    assert "CustomResourceDefinition" not in kinds(render(include_crds=False))
    objs = render(values_for("crd-install"))
    crd = find(objs, "CustomResourceDefinition", "flinkdeployments.flink.apache.org")
    source = yaml.safe_load(CRD_SOURCE.read_text())
    # Uninstalling the chart must never delete the CRD (and so every FlinkDeployment).
    assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert crd == source


def test_peering_matches_what_kopf_uses() -> None:
    crds = {o["metadata"]["name"]: o for o in render(include_crds=True) if o["kind"] == "CustomResourceDefinition"}
    assert set(crds) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    from kopf._cogs.structs import references

    for crd, selector in (
        (crds["clusterkopfpeerings.kopf.dev"], references.CLUSTER_PEERINGS_K),
        (crds["kopfpeerings.kopf.dev"], references.NAMESPACED_PEERINGS_K),
    ):
        spec = crd["spec"]
        assert (spec["group"], spec["names"]["plural"]) == (selector.group, selector.any_name)
        assert [v["name"] for v in spec["versions"]] == [selector.version]
        assert spec["scope"] == ("Cluster" if selector is references.CLUSTER_PEERINGS_K else "Namespaced")
        # kopf merge-patches `status` on the object itself: no status subresource, unknown fields kept.
        version = spec["versions"][0]
        assert "subresources" not in version
        assert version["schema"]["openAPIV3Schema"]["properties"]["status"]["x-kubernetes-preserve-unknown-fields"]
    assert find(render(), "ClusterKopfPeering")["metadata"]["name"] == PEERING_NAME
    assert [
        o["metadata"]["namespace"] for o in render(values_for("watch-namespaces")) if o["kind"] == "KopfPeering"
    ] == [
        "team-a",
        "team-b",
    ]
    assert not {"ClusterKopfPeering", "KopfPeering"} & set(kinds(render(values_for("no-peering"))))


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"validationMode": "strict"}, "/validationMode"),
        ({"webhook": {"validating": {"timeoutSeconds": 60}}}, "/webhook/validating/timeoutSeconds"),
        ({"webhook": {"mutating": {"failurePolicy": "Maybe"}}}, "/webhook/mutating/failurePolicy"),
        ({"tls": {"mode": "self-signed"}}, "/tls/mode"),
        ({"replica": 3}, "replica"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
    ],
)
def test_the_schema_refuses_bad_values(values: dict[str, Any], complaint: str, tmp_path: Any) -> None:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    result = helm("template", "x", str(CHART), "--values", str(file), check=False)
    assert result.returncode != 0
    assert complaint in result.stderr, result.stderr


def test_secret_mode_needs_its_secret_and_ca() -> None:
    no_ca = helm("template", "x", str(CHART), "--set", "tls.mode=secret,tls.secret.name=s", check=False)
    assert no_ca.returncode != 0 and "tls.secret.caBundle is required" in no_ca.stderr
    no_name = helm("template", "x", str(CHART), "--set", "tls.mode=secret,tls.secret.caBundle=Zm9v", check=False)
    assert no_name.returncode != 0 and "tls.secret.name is required" in no_name.stderr


@pytest.mark.parametrize("name", ["default", "hardened", "watch-namespaces"])
def test_the_webhooks_and_flinkmem_skip_the_same_namespaces(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # One list: a namespace the API server still sends but flinkmem skips (or the reverse) is a gap.
    objs = render(values_for(name))
    excluded = settings_of(objs, monkeypatch).excluded_namespaces
    for config in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for webhook in find(objs, config)["webhooks"]:
            not_in = [
                e["values"]
                for e in webhook["namespaceSelector"]["matchExpressions"]
                if e["operator"] == "NotIn" and e["key"] == "kubernetes.io/metadata.name"
            ]
            assert not_in == [list(excluded)], webhook["name"]


def test_client_authentication_mounts_the_api_servers_ca() -> None:
    values = values_for("hardened")
    objs = render(values)
    main = container(objs)
    env = {e["name"]: e.get("value") for e in main["env"]}
    ca_file = Path(env["FLINKMEM_CLIENT_CA_FILE"])
    mount = next(m for m in main["volumeMounts"] if m["mountPath"] == str(ca_file.parent))
    assert mount["readOnly"] is True
    volumes = find(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == mount["name"])
    config_map = find(objs, "ConfigMap", volume["configMap"]["name"])
    expected = base64.b64decode(values["webhook"]["clientAuth"]["caBundle"]).decode()
    assert config_map["data"][ca_file.name] == expected
    assert x509.load_pem_x509_certificate(expected.encode()).subject.rfc4514_string() == "CN=packaging test CA"
    # Without client authentication nothing of it is rendered.
    default = render()
    assert "FLINKMEM_CLIENT_CA_FILE" not in {e["name"] for e in container(default)["env"]}
    assert "ConfigMap" not in kinds(default)


def test_client_authentication_without_a_ca_fails_with_the_fix(tmp_path: Any) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"webhook": {"clientAuth": {"enabled": True}}}))
    result = helm("template", "flinkmem", str(CHART), "--values", str(values), check=False)
    assert result.returncode != 0
    assert "webhook.clientAuth.caBundle" in result.stderr


def test_the_network_policy_admits_only_flinkmems_ports_from_the_peers_given() -> None:
    objs = render(values_for("hardened"))
    policy = find(objs, "NetworkPolicy")
    pod = find(objs, "Deployment")["spec"]["template"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    ports = {p["name"] for p in container(objs)["ports"]}
    rules = {rule["ports"][0]["port"]: rule.get("from") for rule in policy["spec"]["ingress"]}
    assert set(rules) == ports == {"webhook", "health"}
    assert rules["webhook"] == [{"ipBlock": {"cidr": "192.0.2.10/32"}}]
    assert rules["health"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    # The default admits those ports from anywhere (no peers known), and nothing else.
    default = find(render(), "NetworkPolicy")
    assert [(r["ports"][0]["port"], r.get("from")) for r in default["spec"]["ingress"]] == [
        ("webhook", None),
        ("health", None),
    ]
    assert "NetworkPolicy" not in kinds(render(values_for("no-network-policy")))
