"""What the benchmarks need from the private local control plane they start: its processes (to count
their CPU), the admin client credentials (for the load generator) and namespaces to load."""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from benchmarks import procstat
from localplane import controlplane

__all__ = [
    "AdminTLS",
    "admin_tls",
    "api_writes",
    "control_plane_pids",
    "create_namespace",
    "delete_namespace",
    "delete_pods",
]


class AdminTLS(NamedTuple):
    server: str
    ca: Path
    cert: Path
    key: Path


def admin_tls(layout: controlplane.Layout) -> AdminTLS:
    state = json.loads(layout.state.read_text())
    pki = layout.pki
    return AdminTLS(state["server"], pki.ca_cert, pki.dir / "admin.crt", pki.dir / "admin.key")


def control_plane_pids(layout: controlplane.Layout) -> dict[str, set[int]]:
    """Each component's process (and any children it has), by component name."""
    state = json.loads(layout.state.read_text())
    return {name: procstat.process_tree(int(p["pid"])) for name, p in state["processes"].items()}


def create_namespace(cluster: controlplane.Cluster, name: str) -> None:
    """A namespace ready for pods (its default ServiceAccount exists)."""
    cluster.kubectl("create", "namespace", name)
    for _ in range(300):
        if cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"namespace {name} got no default ServiceAccount in 30 s")


def delete_namespace(cluster: controlplane.Cluster, name: str) -> None:
    """Deleted and gone, so that a later phase does not pay for its deletion."""
    cluster.kubectl("delete", "namespace", name, "--wait=true", "--timeout=300s", timeout=320)


def _call(tls: AdminTLS, method: str, path: str) -> dict[str, object]:
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    request = urllib.request.Request(f"{tls.server}{path}", method=method)
    with urllib.request.urlopen(request, context=context, timeout=120) as answer:
        payload: dict[str, object] = json.loads(answer.read())
    return payload


def delete_pods(tls: AdminTLS, namespace: str, selector: str) -> None:
    """Deletes the selected pods in one call and waits until none is left (pods without a node go at once)."""
    path = f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}"
    _call(tls, "DELETE", path)
    for _ in range(600):
        items = _call(tls, "GET", path + "&limit=1").get("items")
        if not items:
            return
        time.sleep(0.2)
    raise RuntimeError(f"pods {selector} in {namespace} still there after 120 s")


# The API writes counted per create: on the objects a create makes and on what flinkmem writes
# because of them (its annotation PATCH, Events, evictions). Leases, peering and the like are
# periodic, not per create, and are left out.
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY"})
WRITE_RESOURCES = frozenset({"flinkdeployments", "pods", "events"})
_COUNTER = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _get_text(tls: AdminTLS, path: str) -> str:
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    with urllib.request.urlopen(f"{tls.server}{path}", context=context, timeout=60) as answer:
        text: str = answer.read().decode()
    return text


def api_writes(tls: AdminTLS) -> Counter[str]:
    """Writes the API server has served so far on flinkdeployments, pods and Events (from its /metrics), by
    "VERB resource[/subresource]"; `.total()` is all of them."""
    found: Counter[str] = Counter()
    for line in _get_text(tls, "/metrics").splitlines():
        match = _COUNTER.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("verb") in WRITE_VERBS and labels.get("resource") in WRITE_RESOURCES:
            what = labels["resource"] + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            found[f"{labels['verb']} {what}"] += int(float(match["value"]))
    return found
