"""flinkmem installed the way users install it, on the HA plane, for the whole tests/ha package.

The ``ha`` fixture:

1. starts the HA plane (:mod:`localplane.haplane`) in a network namespace of its own: etcd,
   kube-apiserver with aggregator routing, kube-controller-manager, cert-manager and its CA
   injector. The test thread stays inside that namespace until the package is done: kubectl, helm,
   the load generator and flinkmem all run inside, and nothing they send can leave it;
2. starts the stand-in scheduler and kubelet (:mod:`localplane.kubelet`) for flinkmem's pods, one
   node per replica on 192.0.2.211-213. By default it runs each pod's container from the image
   ``make image`` builds (built here if it is missing or stale), with podman, in the plane's network
   namespace, under the pod's security context, volumes and limits; ``FLINKMEM_HA_RUNTIME=process``
   runs ``flinkmem serve`` of the development venv as local processes instead (quicker, but then
   neither the image nor the security context is under test); ``FLINKMEM_HA_IMAGE=<ref>`` runs a
   given image instead of building one, and ``FLINKMEM_HA_HELM_SET=a=1,b=2`` adds ``helm --set``
   values (to measure another build or setting, e.g. ``shutdown.preStopSeconds=0``);
3. runs ``helm install`` of charts/flinkmem with its defaults (two replicas, tls.mode=cert-manager,
   kopf peering, PodDisruptionBudget, NetworkPolicy) plus ``crd.install=true`` (no Flink operator
   here), ``evictDrifted=true``, ``webhook.clientAuth`` with the plane's CA (its kube-apiserver
   presents a webhook client certificate, so flinkmem answers nobody else) and the image just built,
   into a namespace labelled for the restricted Pod Security Standard, and waits until the
   Deployment is available.

The figures each fault case measures are printed at the end of the session (they are never asserted
as timings) and written to ``ha-figures.json`` in the plane's directory.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localplane.controlplane import WEBHOOK_CLIENT_CN, tool_dir
from localplane.haplane import NODE_ADDRESSES, HaPlane, ha_plane
from localplane.kubelet import Kubelet, Node, PodmanRuntime, ProcessRuntime, Runtime
from localplane.rest import Rest
from tests.ha.harness import await_all
from tests.support.privileges import network_namespace_problem

RELEASE = "flinkmem"
RELEASE_NAMESPACE = "flinkmem"
CHART = Path(__file__).resolve().parents[2] / "charts" / "flinkmem"
VALUES: dict[str, Any] = {"crd": {"install": True}, "evictDrifted": True}
SELECTOR = "app.kubernetes.io/instance=flinkmem,app.kubernetes.io/name=flinkmem"
REPLICAS = 2  # the chart's default
REPO_ROOT = Path(__file__).resolve().parents[2]
# How the stand-in kubelet runs containers: "podman" (from the image, the default) or "process".
RUNTIME = os.environ.get("FLINKMEM_HA_RUNTIME", "podman")
# For measurements against another build (e.g. the figures of an earlier release, docs/operations.md):
# an image to run instead of building the current sources, and extra `helm --set` values.
GIVEN_IMAGE = os.environ.get("FLINKMEM_HA_IMAGE", "")
HELM_SET = [item for item in os.environ.get("FLINKMEM_HA_HELM_SET", "").split(",") if item]

FIGURES = pytest.StashKey[list[dict[str, Any]]]()
FIGURES_FILE = pytest.StashKey[Path]()


@dataclass(frozen=True)
class Ha:
    plane: HaPlane
    kubelet: Kubelet
    installed_in: float

    @property
    def rest(self) -> Rest:
        return self.plane.rest


def _helm(plane: HaPlane, *args: str) -> str:
    command = [str(tool_dir() / "helm"), "--kubeconfig", str(plane.cluster.kubeconfig), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def built_image() -> str:
    """The image of the current sources (``make image``: built now if missing or stale); its reference."""
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "image.sh")], capture_output=True, text=True, timeout=3600, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"hack/image.sh failed:\n{result.stderr[-5000:]}")
    return result.stdout.strip().splitlines()[-1]


def _client_auth(plane: HaPlane) -> dict[str, Any]:
    """webhook.clientAuth for the plane's kube-apiserver: its CA and its webhook client's name."""
    ca = base64.b64encode(plane.layout.pki.ca_cert.read_bytes()).decode()
    return {"enabled": True, "caBundle": ca, "names": [WEBHOOK_CLIENT_CN]}


def _runtime(plane: HaPlane, values: dict[str, Any]) -> Runtime:
    if RUNTIME == "process":
        return ProcessRuntime()
    if RUNTIME != "podman":
        raise AssertionError(f"FLINKMEM_HA_RUNTIME={RUNTIME!r}: podman or process")
    repository, _, tag = (GIVEN_IMAGE or built_image()).rpartition(":")
    values["image"] = {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}
    return PodmanRuntime(plane.netns.path)


@pytest.fixture(scope="package")
def ha(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Ha]:
    problem = network_namespace_problem("tests/ha (the chart on a plane of its own)", "sudo make test-ha")
    if problem is not None:
        pytest.skip(problem)
    root = tmp_path_factory.mktemp("ha")
    request.config.stash[FIGURES_FILE] = root / "ha-figures.json"
    with ha_plane(root) as plane:
        nodes = [Node(f"ha-node-{i + 1}", address) for i, address in enumerate(NODE_ADDRESSES)]
        values = json.loads(json.dumps(VALUES))
        values["webhook"] = {"clientAuth": _client_auth(plane)}
        runtime = _runtime(plane, values)
        kubelet = Kubelet(
            plane.rest,
            RELEASE_NAMESPACE,
            SELECTOR,
            nodes,
            root / "kubelet",
            plane.server,
            plane.cluster.ca_file,
            runtime=runtime,
        )
        kubelet.start()
        try:
            plane.cluster.kubectl("create", "namespace", RELEASE_NAMESPACE)
            plane.cluster.kubectl(
                "label", "namespace", RELEASE_NAMESPACE, "pod-security.kubernetes.io/enforce=restricted"
            )
            values_file = root / "values.json"
            values_file.write_text(json.dumps(values))
            started = time.monotonic()
            sets = [arg for item in HELM_SET for arg in ("--set", item)]
            _helm(plane, "install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--values", str(values_file),
                  *sets)  # fmt: skip
            wait_available(plane, kubelet)
            yield Ha(plane, kubelet, time.monotonic() - started)
        finally:
            kubelet.stop()


def wait_available(plane: HaPlane, kubelet: Kubelet, timeout: float = 300.0) -> None:
    """Until flinkmem's Deployment reports all its replicas available (the harness failing stops the wait)."""
    path = f"/apis/apps/v1/namespaces/{RELEASE_NAMESPACE}/deployments/{RELEASE}"

    def available() -> bool:
        kubelet.check()
        plane.check()
        answer = plane.rest.get(path)
        status = answer.body.get("status", {}) if answer.ok else {}
        return bool(status.get("availableReplicas") == REPLICAS and status.get("updatedReplicas") == REPLICAS)

    def injected() -> bool:
        plane.check()
        kinds = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
        configs = [plane.rest.get(f"/apis/admissionregistration.k8s.io/v1/{kind}/{RELEASE}") for kind in kinds]
        return all(c.ok and all("caBundle" in w["clientConfig"] for w in c.body["webhooks"]) for c in configs)

    await_all(available, timeout, "flinkmem's Deployment available")
    await_all(injected, timeout, "cert-manager's CA injector to fill both webhook configurations")


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """Where each case puts its figures (one dict per case, ``case`` first)."""
    found = request.config.stash.get(FIGURES, None)
    if found is None:
        found = []
        request.config.stash[FIGURES] = found
    return found


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    found = config.stash.get(FIGURES, None)
    if not found:
        return
    terminalreporter.section("HA fault suite: figures of this run (not assertions)")
    for entry in found:
        terminalreporter.write_line(f"{entry['case']}:")
        for key, value in entry.items():
            if key != "case":
                shown = f"{value:.1f}" if isinstance(value, float) else str(value)
                terminalreporter.write_line(f"    {key:<48} {shown}")
    path = config.stash.get(FIGURES_FILE, None)
    if path is not None:
        path.write_text(json.dumps(found, indent=2))
        terminalreporter.write_line(f"(also in {path})")
