"""The chart installed as users install it: cert-manager issues the certificate and injects its CA,
two replicas serve behind the Service, and webhook calls reach them through its endpoints."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from localplane.controlplane import mint_client_cert
from localplane.haplane import NODE_ADDRESSES
from localplane.kubelet import PODMAN, parse_quantity
from tests.e2e.test_webhooks import flinkdeployment, jobmanager_deployment
from tests.ha.conftest import RELEASE_NAMESPACE, REPLICAS, RUNTIME, Ha
from tests.ha.harness import RESOLVED, await_all, is_sized

pytestmark = pytest.mark.e2e

SERVICE_HOST = f"flinkmem.{RELEASE_NAMESPACE}.svc"


def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result


def _get(ha: Ha, path: str) -> dict[str, Any]:
    answer = ha.rest.get(path)
    assert answer.ok, f"GET {path}: {answer.message}"
    body: dict[str, Any] = answer.body
    return body


def _secret(ha: Ha, name: str) -> dict[str, bytes]:
    data = _get(ha, f"/api/v1/namespaces/{RELEASE_NAMESPACE}/secrets/{name}")["data"]
    return {key: base64.b64decode(value) for key, value in data.items()}


def webhook_context(ca_pem: bytes, client: tuple[Path, Path] | None) -> ssl.SSLContext:
    """TLS to one replica, verified against ``ca_pem``, presenting ``client`` (certificate, key) if given."""
    context = ssl.create_default_context(cadata=ca_pem.decode())
    if client is not None:
        context.load_cert_chain(*client)
    return context


def served_certificate(address: str, ca_pem: bytes, client: tuple[Path, Path]) -> x509.Certificate:
    """The certificate a replica presents for the Service's name, verified against ``ca_pem``."""
    with (
        socket.create_connection((address, 9443), timeout=5) as raw,
        webhook_context(ca_pem, client).wrap_socket(raw, server_hostname=SERVICE_HOST) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def send_review(
    address: str, ca_pem: bytes, body: dict[str, Any], client: tuple[Path, Path] | None
) -> tuple[int, dict[str, Any] | None]:
    """A dry-run AdmissionReview of a FlinkDeployment CREATE sent straight to one replica: the HTTP
    status and the review's response; (0, None) when no HTTP answer came (refused, reset, timeout)."""
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "ha-check",
            "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": "FlinkDeployment"},
            "resource": {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"},
            "namespace": "default",
            "name": body["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": {"username": "ha-check"},
            "object": body,
            "oldObject": None,
            "dryRun": True,
        },
    }
    context = webhook_context(ca_pem, client)
    context.check_hostname = False  # addressed by IP; the certificate names the Service
    request = urllib.request.Request(
        f"https://{address}:9443/validate-flinkdeployment",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            answer: dict[str, Any] = json.loads(response.read())["response"]
            return int(response.status), answer
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:
        return 0, None


def test_cert_manager_issues_the_serving_certificate_and_injects_its_ca(ha: Ha) -> None:
    certificate = _get(ha, f"/apis/cert-manager.io/v1/namespaces/{RELEASE_NAMESPACE}/certificates/flinkmem-serving")
    ready = {c["type"]: c["status"] for c in certificate["status"]["conditions"]}
    assert ready["Ready"] == "True"
    tls = _secret(ha, "flinkmem-tls")
    leaf = x509.load_pem_x509_certificate(tls["tls.crt"])
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == sorted([SERVICE_HOST, f"{SERVICE_HOST}.cluster.local"])
    ca = x509.load_pem_x509_certificate(tls["ca.crt"])
    assert leaf.issuer == ca.subject and ca.subject != leaf.subject, "signed by the chart's own CA"
    assert _secret(ha, "flinkmem-ca")["tls.crt"] == tls["ca.crt"]
    # The chart leaves caBundle out; cert-manager's CA injector filled it from the Certificate.
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        config = _get(ha, f"/apis/admissionregistration.k8s.io/v1/{kind}/flinkmem")
        assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "flinkmem/flinkmem-serving"
        for webhook in config["webhooks"]:
            assert "url" not in webhook["clientConfig"]
            assert webhook["clientConfig"]["service"]["name"] == "flinkmem"
            assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == tls["ca.crt"]


def test_the_replicas_are_the_service_endpoints_and_serve_the_issued_certificate(ha: Ha) -> None:
    pods = ha.kubelet.pods()
    assert len(pods) == REPLICAS and all(p.ready for p in pods)
    addresses = {p.ip for p in pods}
    assert addresses <= set(NODE_ADDRESSES)

    def flinkmem_slices() -> list[dict[str, Any]]:
        slices = _get(ha, f"/apis/discovery.k8s.io/v1/namespaces/{RELEASE_NAMESPACE}/endpointslices")["items"]
        return [s for s in slices if s["metadata"]["labels"].get("kubernetes.io/service-name") == "flinkmem"]

    def ready_endpoints() -> set[str]:
        return {e["addresses"][0] for s in flinkmem_slices() for e in s["endpoints"] if e["conditions"]["ready"]}

    # The EndpointSlice controller follows pod readiness a moment later.
    await_all(lambda: ready_endpoints() == addresses, 30, "the ready replicas as the Service's endpoints")
    mine = flinkmem_slices()
    assert {p["port"] for s in mine for p in s["ports"] if p["name"] == "https"} == {9443}
    tls = _secret(ha, "flinkmem-tls")
    issued = x509.load_pem_x509_certificate(tls["tls.crt"])
    for address in addresses:
        assert served_certificate(address, tls["ca.crt"], ha.plane.layout.pki.webhook_client).serial_number == (
            issued.serial_number
        )


def test_the_replicas_run_as_the_chart_service_account(ha: Ha) -> None:
    for pod in ha.kubelet.pods():
        kubeconfig = yaml.safe_load((ha.kubelet.pod(pod.name).dir / "kubeconfig").read_text())
        token = Path(kubeconfig["users"][0]["user"]["tokenFile"]).read_text()
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["sub"] == "system:serviceaccount:flinkmem:flinkmem"
        assert claims["kubernetes.io"]["pod"]["name"] == pod.name
        log = pod.log.read_text() if pod.log else ""
        for refusal in ("Forbidden", "forbidden", "status=403", "HTTP 403"):
            assert refusal not in log, f"{pod.name} was refused something:\n{log[-3000:]}"


def test_webhook_calls_reach_the_replicas_through_the_service(ha: Ha) -> None:
    ha.plane.cluster.kubectl("create", "namespace", "install-check")
    path = "/apis/flink.apache.org/v1beta1/namespaces/install-check/flinkdeployments"
    refused = ha.rest.post(path, flinkdeployment("too-small", {"jobmanager.memory.heap.size": "4g"}, memory="1g"))
    assert refused.status == 422 and "flinkmem refused" in refused.message
    assert ha.rest.post(path, flinkdeployment("fine", {}, memory="2g")).ok

    def annotated() -> bool:
        found = _get(ha, f"{path}/fine")["metadata"].get("annotations", {})
        return RESOLVED in found

    await_all(annotated, 60, "the resolved-memory annotation")
    assert ha.rest.post("/apis/apps/v1/namespaces/install-check/deployments", jobmanager_deployment("fine")).ok

    def pod() -> dict[str, Any] | None:
        items = _get(ha, "/api/v1/namespaces/install-check/pods?labelSelector=app%3Dfine")["items"]
        return items[0] if items else None

    assert is_sized(await_all(pod, 60, "the JobManager pod")[0])


@pytest.mark.skipif(RUNTIME != "podman", reason="the replicas run as local processes (FLINKMEM_HA_RUNTIME=process)")
def test_the_replicas_run_from_the_image_under_the_chart_security_context(ha: Ha) -> None:
    """What the container runtime applied, read back from the running containers the pods' statuses name."""
    deployment = _get(ha, f"/apis/apps/v1/namespaces/{RELEASE_NAMESPACE}/deployments/flinkmem")
    spec = deployment["spec"]["template"]["spec"]
    limits = spec["containers"][0]["resources"]["limits"]
    for pod in ha.kubelet.pods():
        status = _get(ha, f"/api/v1/namespaces/{RELEASE_NAMESPACE}/pods/{pod.name}")["status"]
        (container,) = status["containerStatuses"]
        runtime, _, container_id = container["containerID"].partition("://")
        assert runtime == "podman" and container["imageID"].startswith("sha256:")
        inspected = json.loads(_podman("container", "inspect", container_id).stdout)[0]
        host = inspected["HostConfig"]
        assert inspected["Config"]["User"] == "65532:65532"
        assert host["ReadonlyRootfs"] is True
        assert host["Memory"] == 512 * 2**20 == int(parse_quantity(limits["memory"]))
        assert host["NanoCpus"] == int(parse_quantity(limits["cpu"]) * 1e9)
        # The main process, as the machine sees it: the container's user and groups.
        proc = Path(f"/proc/{pod.pid}/status").read_text()
        uid = next(line.split()[1:] for line in proc.splitlines() if line.startswith("Uid:"))
        groups = next(line.split()[1:] for line in proc.splitlines() if line.startswith("Groups:"))
        assert uid == ["65532"] * 4 and "65532" in groups
        capabilities = {
            line.split(":")[0]: int(line.split()[1], 16) for line in proc.splitlines() if line.startswith("Cap")
        }
        assert capabilities["CapEff"] == capabilities["CapPrm"] == capabilities["CapBnd"] == 0, "capabilities: drop ALL"
        fields = {line.split(":")[0]: line.split()[1] for line in proc.splitlines() if ":" in line and line.split()[1:]}
        assert fields["NoNewPrivs"] == "1", "allowPrivilegeEscalation: false"
        assert fields["Seccomp"] == "2", "seccompProfile RuntimeDefault: a seccomp filter"
        # Inside: only /tmp (the emptyDir) is writable; the TLS files are readable, not writable.
        probe = (
            "import os\n"
            "for path in ('/opt/flinkmem/x', '/x', '/etc/flinkmem/tls/x', '/tmp/x'):\n"
            "    try:\n"
            "        open(path, 'w').close(); print('written')\n"
            "    except OSError as e: print(e.strerror)\n"
            "print(len(open('/etc/flinkmem/tls/tls.key').read()) > 0)\n"
        )
        out = _podman("exec", container_id, "python", "-c", probe).stdout.split("\n")
        assert out[:5] == ["Read-only file system"] * 3 + ["written", "True"], out


def test_only_the_api_server_is_answered(ha: Ha, tmp_path: Path) -> None:
    # webhook.clientAuth is on: a tenant who reaches a replica's port directly (no NetworkPolicy
    # enforcement here) cannot have reviews answered, nor probe which configurations pass.
    ca_pem = _secret(ha, "flinkmem-tls")["ca.crt"]
    pki = ha.plane.layout.pki
    tenant = tmp_path / "tenant.crt", tmp_path / "tenant.key"
    cert, key = mint_client_cert(pki.dir, "system:serviceaccount:team-a:default")
    tenant[0].write_bytes(cert)
    tenant[1].write_bytes(key)
    body = flinkdeployment("probe", {}, "2g")
    for address in (p.ip for p in ha.kubelet.pods()):
        assert send_review(address, ca_pem, body, None) == (0, None), "no client certificate"
        # Signed by the API server's CA, but not the API server's webhook client name.
        assert send_review(address, ca_pem, body, tenant) == (403, None), "another client of the same CA"
        status, answer = send_review(address, ca_pem, body, pki.webhook_client)
        assert status == 200 and answer is not None and answer["allowed"] is True
