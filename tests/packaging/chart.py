"""Rendering the Helm chart and reading what it renders, for the packaging tests.

``helm`` is the pinned binary that ``make tools`` builds (hack/tools.sh); charts are rendered for
the pinned Kubernetes version of hack/versions.env.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from localplane.controlplane import issue_certificate, pinned_versions, tool_dir

__all__ = [
    "CHART",
    "CRD_SOURCE",
    "MANIFESTS",
    "REPO_ROOT",
    "VALUE_SETS",
    "Permission",
    "ca_bundle",
    "find",
    "helm",
    "helm_binary",
    "kinds",
    "kube_version",
    "load_documents",
    "permissions",
    "render",
    "values_for",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "flinkmem"
MANIFESTS = REPO_ROOT / "manifests"
CRD_SOURCE = REPO_ROOT / "operator" / "flinkmem" / "data" / "flinkdeployments-crd.yaml"

# (namespace or "*" for cluster-wide, apiGroup, resource, verb, resourceName or "*")
Permission = tuple[str, str, str, str, str]


@functools.cache
def ca_bundle() -> str:
    """base64 of a throw-away CA certificate (PEM), for tls.mode=secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "packaging test CA")])
    cert = issue_certificate(name, key, None, ca=True)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


# The value sets every chart test renders: the defaults and one for each feature switch.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "warn": {"validationMode": "warn"},
    "audit": {"validationMode": "audit"},
    "no-pod-mutation": {"podMutation": False},
    "evict": {"evictDrifted": True},
    "evict-in-warn-mode": {"evictDrifted": True, "validationMode": "warn"},
    "helm-tls": {"tls": {"mode": "helm"}},
    "secret-tls": {"tls": {"mode": "secret", "secret": {"name": "corp-flinkmem-tls", "caBundle": "<ca>"}}},
    "cluster-issuer": {
        "tls": {"certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}}
    },
    "watch-namespaces": {"watchNamespaces": ["team-a", "team-b"]},
    "custom-resource": {"resource": {"group": "flink.example.com", "version": "v1", "plural": "flinkclusters"}},
    "no-bluegreen": {"blueGreen": {"enabled": False}},
    "crd-install": {"crd": {"install": True}},
    "no-peering": {"peering": {"enabled": False}},
    "hardened": {
        "excludeNamespaces": ["kube-system", "kube-public", "platform"],
        "webhook": {
            "tlsMinVersion": "1.2",
            "clientAuth": {"enabled": True, "caBundle": "<ca>", "names": ["kube-apiserver-webhook-client"]},
        },
        "networkPolicy": {
            "webhookFrom": [{"ipBlock": {"cidr": "192.0.2.10/32"}}],
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        },
    },
    "no-network-policy": {"networkPolicy": {"enabled": False}},
    "tuned": {
        "replicas": 3,
        "verbose": True,
        "containerName": "jobmanager",
        "controller": {"qps": 2.5, "burst": 5},
        "webhook": {"port": 8443, "validating": {"failurePolicy": "Ignore", "timeoutSeconds": 3}},
        "healthPort": 9090,
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "podDisruptionBudget": {"enabled": False},
    },
}


def values_for(name: str) -> dict[str, Any]:
    """VALUE_SETS[name], with placeholders filled in."""
    text = json.dumps(VALUE_SETS[name]).replace('"<ca>"', json.dumps(ca_bundle()))
    values: dict[str, Any] = json.loads(text)
    return values


def kube_version() -> str:
    return pinned_versions()["KUBERNETES_VERSION"]


def helm_binary() -> Path:
    path = tool_dir() / "helm"
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: run `make tools` first (it builds helm)")
    return path


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs the pinned helm; with ``check`` a failure raises with helm's stderr in the message."""
    proc = subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def load_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def render(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "flinkmem",
    namespace: str = "flinkmem",
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    """``helm template`` of the chart with ``values`` (merged over values.yaml), parsed."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        json.dump(dict(values or {}), file)  # JSON is YAML
        file.flush()
        args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", kube_version()]
        args += ["--values", file.name]
        if include_crds:
            args.append("--include-crds")
        return load_documents(helm(*args).stdout)


def kinds(objs: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(str(obj["kind"]) for obj in objs)


def find(objs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of ``kind`` (and ``name``); fails the test if there is not exactly one."""
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _rule_permissions(rules: Sequence[Mapping[str, Any]], namespace: str) -> set[Permission]:
    out: set[Permission] = set()
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    for name in rule.get("resourceNames") or ["*"]:
                        out.add((namespace, group, resource, verb, name))
    return out


def permissions(objs: Sequence[Mapping[str, Any]], account: str, account_namespace: str) -> set[Permission]:
    """Everything the rendered RBAC objects grant the ServiceAccount ``account_namespace/account``."""

    def binds(binding: Mapping[str, Any]) -> bool:
        return any(
            s.get("kind") == "ServiceAccount" and s.get("name") == account and s.get("namespace") == account_namespace
            for s in binding.get("subjects", [])
        )

    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}
    granted: set[Permission] = set()
    for binding in objs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding") or not binds(binding):
            continue
        ref = binding["roleRef"]
        binding_namespace = binding["metadata"].get("namespace")
        role_namespace = binding_namespace if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], role_namespace, ref["name"]))
        assert role is not None, f"{binding['kind']} {binding['metadata']['name']} refers to a missing {ref}"
        scope = "*" if binding["kind"] == "ClusterRoleBinding" else str(binding_namespace)
        granted |= _rule_permissions(role.get("rules", []), scope)
    return granted
