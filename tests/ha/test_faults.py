"""What happens when it breaks: each fault under a steady load of creates, with the figures of the run.

Every case runs a :class:`~tests.ha.harness.Load` (two FlinkDeployments a second, each followed by
its JobManager Deployment, whose pod the ReplicaSet controller creates) through the API server, then
checks that nothing was lost:

- every FlinkDeployment was either refused (flinkmem unreachable: fail closed) or admitted and then
  annotated by flinkmem's controller;
- every JobManager pod was either sized by the mutating webhook or, admitted unsized (flinkmem
  unreachable: fail open), reported by a MemoryDrift Event and, with evictDrifted, replaced by a
  sized pod.

Bounds are correctness bounds (generous); the times measured are figures, printed at the end.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509

from localplane.kubelet import PodView
from localplane.rest import Rest
from tests.e2e.test_webhooks import flinkdeployment
from tests.ha.conftest import RELEASE, RELEASE_NAMESPACE, REPLICAS, Ha, wait_available
from tests.ha.harness import AnnotationLog, EndpointLog, Load, PodLog, await_all
from tests.ha.test_chart_installed import send_review, served_certificate

pytestmark = pytest.mark.e2e

BOUND = 120.0  # seconds: how long anything the suite waits for may take before it counts as lost
FD_PATH = "/apis/flink.apache.org/v1beta1/namespaces/{ns}/flinkdeployments"


# --------------------------------------------------------------------------------------------------
# Set-up and checks shared by the cases


def _namespace(ha: Ha, name: str) -> str:
    ha.plane.cluster.kubectl("create", "namespace", name)
    await_all(
        lambda: ha.rest.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").ok,
        60,
        f"the default ServiceAccount of {name}",
    )
    return name


def _settled(ha: Ha) -> list[PodView]:
    """All replicas ready, and exactly they are the Service's ready endpoints."""
    wait_available(ha.plane, ha.kubelet)

    def endpoints_match() -> list[PodView] | None:
        pods = [p for p in ha.kubelet.pods() if p.ready]
        ready = EndpointLog(ha.rest, RELEASE_NAMESPACE, RELEASE).ready()
        return pods if len(pods) == REPLICAS and ready == frozenset(p.ip for p in pods) else None

    return await_all(endpoints_match, BOUND, "every replica ready and listed as an endpoint")[0]


@dataclass
class Run:
    """One case's load and recorders."""

    ha: Ha
    namespace: str
    load: Load
    pods: PodLog
    annotations: AnnotationLog
    endpoints: EndpointLog
    fault_at: float

    def fault(self) -> float:
        """Marks the moment the fault is injected (the figures split the creates there)."""
        self.fault_at = time.monotonic()
        return self.fault_at

    def finish(self) -> dict[str, Any]:
        """Stops the load, then checks what became of every create (the recorders still watch)."""
        self.load.stop()
        return _nothing_lost(self)


@contextmanager
def _under_load(ha: Ha, case: str, warmup: float = 6.0) -> Iterator[Run]:
    namespace = _namespace(ha, f"load-{case}")
    with (
        EndpointLog(ha.rest, RELEASE_NAMESPACE, RELEASE) as endpoints,
        PodLog(ha.rest, namespace) as pods,
        AnnotationLog(ha.rest, namespace) as annotations,
        Load(ha.rest, namespace, case) as load,
    ):
        time.sleep(warmup)  # steady state before the fault
        yield Run(ha, namespace, load, pods, annotations, endpoints, time.monotonic())


def _events(rest: Rest, namespace: str, reason: str) -> list[dict[str, Any]]:
    query = urllib.parse.quote(f"reason={reason}")
    answer = rest.get(f"/api/v1/namespaces/{namespace}/events?fieldSelector={query}")
    return list(answer.body["items"]) if answer.ok else []


def _nothing_lost(run: Run) -> dict[str, Any]:
    """Checks the outcome of every create of the run; returns the counts and times as figures."""
    rest, namespace, creates = run.ha.rest, run.namespace, run.load.of("FlinkDeployment")
    created = {c.name for c in creates if c.created}
    closed = [c for c in creates if c.webhook_failed]
    api_down = [c for c in creates if c.api_unavailable]
    wrong = [c for c in creates if not (c.created or c.webhook_failed or c.api_unavailable)]
    assert wrong == [], f"FlinkDeployments refused for another reason than flinkmem being unreachable: {wrong[:3]}"
    existing = {i["metadata"]["name"] for i in rest.get(FD_PATH.format(ns=namespace)).body["items"]}
    assert created <= existing, "an admitted FlinkDeployment is missing"
    assert not existing & {c.name for c in closed}, "a FlinkDeployment refused by the failure policy exists"
    # A create cut off by the API server going down may or may not have been stored.
    assert existing - created <= {c.name for c in api_down}

    # Every stored FlinkDeployment is checked by the controller.
    _, annotated_after = await_all(
        lambda: existing <= run.annotations.at().keys(), BOUND, "every admitted FlinkDeployment annotated"
    )
    annotated_at = run.annotations.at()

    def longest_wait(before_fault: bool) -> float:
        waits = [
            annotated_at[c.name] - (c.at + c.took)
            for c in creates
            if c.created and (c.at < run.fault_at) == before_fault
        ]
        return max(waits, default=0.0)

    # Every JobManager pod is sized, or reported as drift and replaced by a sized one.
    apps = {c.name for c in run.load.of("Deployment") if c.created}

    def all_pods_accounted() -> tuple[list[Any], set[str]] | None:
        records = run.pods.records()
        unsized = [r for r in records if not r.sized]
        reported = {e["involvedObject"]["name"] for e in _events(rest, namespace, "MemoryDrift")}
        sized_apps = {r.app for r in records if r.sized and r.gone is None}
        evicted = all(r.gone is not None for r in unsized)
        if {r.name for r in unsized} <= reported and evicted and apps <= sized_apps:
            return unsized, reported
        return None

    (unsized, _reported), accounted_after = await_all(
        all_pods_accounted, BOUND, "every JobManager pod sized, or reported as drift, evicted and replaced"
    )
    return {
        "FlinkDeployment creates": len(creates),
        "  admitted (all annotated by the controller)": len(existing),
        "  refused, flinkmem unreachable (fail closed)": len(closed),
        "  refused, API server down": len(api_down),
        "JobManager pods created": len(run.pods.records()),
        "  admitted unsized (fail open)": len(unsized),
        "  of those reported (MemoryDrift), evicted, replaced sized": len(unsized),
        "longest wait for the annotation, FDs created before the fault (s)": longest_wait(True),
        "longest wait for the annotation, FDs created after it (s)": longest_wait(False),
        "s after the load until all FDs annotated": annotated_after,
        "s after that until all pods sized or reported": accounted_after,
    }


def _restarts(ha: Ha) -> dict[str, int]:
    return {p.name: p.restarts for p in ha.kubelet.pods()}


def _peering(rest: Rest) -> dict[str, dict[str, Any]]:
    answer = rest.get(f"/apis/kopf.dev/v1/clusterkopfpeerings/{RELEASE}")
    status: dict[str, dict[str, Any]] = answer.body.get("status") or {} if answer.ok else {}
    return status


def _reconciler(rest: Rest, alive: set[str]) -> str | None:
    """The replica kopf lets reconcile: the live peer with the highest priority."""
    now = dt.datetime.now(dt.UTC)
    live = {}
    for name, peer in _peering(rest).items():
        seen = dt.datetime.fromisoformat(peer["lastseen"])
        if name in alive and seen + dt.timedelta(seconds=peer["lifetime"]) > now:
            live[name] = peer["priority"]
    return max(live, key=lambda n: live[n]) if live else None


def _first_annotated_after(run: Run, since: float) -> float:
    """Seconds from ``since`` until a FlinkDeployment created after it carried the annotation."""

    def done() -> bool:
        later = {c.name for c in run.load.of("FlinkDeployment") if c.created and c.at >= since}
        return bool(later & run.annotations.at().keys())

    return await_all(done, BOUND, "a FlinkDeployment created after the fault to be annotated", poll=0.25)[1]


# --------------------------------------------------------------------------------------------------
# The cases


def test_certificate_rotation_under_load(ha: Ha, figures: list[dict[str, Any]]) -> None:
    _settled(ha)
    path = f"/apis/cert-manager.io/v1/namespaces/{RELEASE_NAMESPACE}/certificates/flinkmem-serving"

    def serving() -> x509.Certificate:
        data = ha.rest.get(f"/api/v1/namespaces/{RELEASE_NAMESPACE}/secrets/flinkmem-tls").body["data"]
        return x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))

    old = serving()
    ca_pem = base64.b64decode(
        ha.rest.get(f"/api/v1/namespaces/{RELEASE_NAMESPACE}/secrets/flinkmem-tls").body["data"]["ca.crt"]
    )
    with _under_load(ha, "rotation") as run:
        # What `cmctl renew` does: the Issuing condition, set on the Certificate's status.
        run.fault()
        certificate = ha.rest.get(path).body
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = [c for c in certificate["status"].get("conditions", []) if c["type"] != "Issuing"]
        conditions.append(
            {
                "type": "Issuing",
                "status": "True",
                "reason": "ManuallyTriggered",
                "message": "Certificate re-issuance manually triggered",
                "lastTransitionTime": now,
                "observedGeneration": certificate["metadata"]["generation"],
            }
        )
        certificate["status"]["conditions"] = conditions
        renewed = ha.rest.put(f"{path}/status", certificate)
        assert renewed.ok, renewed.message

        def renewed_certificate() -> x509.Certificate | None:
            current = serving()
            return current if current.serial_number != old.serial_number else None

        new, issued_after = await_all(renewed_certificate, BOUND, "cert-manager to write the renewed certificate")
        assert new.public_key() != old.public_key(), "rotationPolicy Always: a new key"

        def all_serve_new() -> bool:
            client = ha.plane.layout.pki.webhook_client
            served = [served_certificate(p.ip, ca_pem, client) for p in ha.kubelet.pods()]
            return all(c.serial_number == new.serial_number for c in served)

        _, served_after = await_all(all_serve_new, BOUND, "every replica to serve the renewed certificate")
        time.sleep(5)  # a little more load on the new certificate
        outcome = run.finish()
    failed = outcome["  refused, flinkmem unreachable (fail closed)"] + outcome["  admitted unsized (fail open)"]
    assert failed == 0, "a certificate rotation must not fail a single admission"
    figures.append(
        {
            "case": "certificate rotation (cmctl renew) under load",
            "s from renew to the new Secret": issued_after,
            "s from renew to every replica serving it": issued_after + served_after,
            **outcome,
        }
    )


def test_a_replica_killed_under_load(ha: Ha, figures: list[dict[str, Any]]) -> None:
    victim = _settled(ha)[0]
    before = _restarts(ha)
    with _under_load(ha, "kill") as run:
        killed = run.fault()
        ha.kubelet.pod(victim.name).kill()  # SIGKILL to the whole container (its process group)

        def dropped() -> bool:
            return victim.ip not in (run.endpoints.changes[-1][1] if run.endpoints.changes else {victim.ip})

        await_all(dropped, BOUND, "the endpoints to drop the killed replica", poll=0.05)
        await_all(lambda: victim.ip in run.endpoints.changes[-1][1], BOUND, "the replica back as an endpoint")
        time.sleep(5)
        outcome = run.finish()
    dropped_at = run.endpoints.first(killed, lambda ready: victim.ip not in ready)
    back_at = run.endpoints.first(killed, lambda ready: victim.ip in ready)
    assert dropped_at is not None and back_at is not None
    in_window = [c for c in run.load.creates if killed <= c.at < dropped_at]
    assert _restarts(ha)[victim.name] == before[victim.name] + 1
    figures.append(
        {
            "case": "a replica killed (SIGKILL of its process group) under load",
            "s until the endpoints dropped it": dropped_at - killed,
            "creates sent in that window": len(in_window),
            "s until it was restarted and an endpoint again": back_at - killed,
            **outcome,
        }
    )


def test_leader_handover(ha: Ha, figures: list[dict[str, Any]]) -> None:
    pods = _settled(ha)
    names = {p.name for p in pods}
    leader = await_all(lambda: _reconciler(ha.rest, names), BOUND, "a reconciling replica in the peering")[0]
    with _under_load(ha, "handover") as run:
        killed = run.fault()
        ha.kubelet.pod(leader).kill()
        # As for a pod on a lost node: force-deleted, so this identity never comes back.
        gone = ha.plane.cluster.kubectl(
            "delete", "pod", leader, "-n", RELEASE_NAMESPACE, "--grace-period=0", "--force", check=False
        )
        assert gone.returncode == 0, gone.stderr
        _first_annotated_after(run, killed)
        survivors = names - {leader}

        def successor() -> str | None:
            return _reconciler(ha.rest, survivors | {p.name for p in ha.kubelet.pods()})

        reconciling = await_all(successor, BOUND, "a reconciling replica after the handover")[0]
        time.sleep(5)
        outcome = run.finish()
    figures.append(
        {
            "case": "the reconciling replica killed and its pod force-deleted (leader handover)",
            "reconciling afterwards": "another original replica" if reconciling in survivors else "the replacement",
            **outcome,
        }
    )
    wait_available(ha.plane, ha.kubelet)


def test_api_server_restarted_under_load(ha: Ha, figures: list[dict[str, Any]]) -> None:
    _settled(ha)
    before = _restarts(ha)
    with _under_load(ha, "apiserver") as run:
        stopped = run.fault()
        ha.plane.stop_apiserver()  # SIGTERM; SIGKILL if it has not exited after 10 s
        stop_took = time.monotonic() - stopped
        ha.plane.start_apiserver()  # back with its flags and data, as after an upgrade
        back = time.monotonic()
        first = _first_annotated_after(run, back)
        time.sleep(10)
        outcome = run.finish()
    after_restart = {c.name for c in run.load.of("FlinkDeployment") if c.created and c.at >= back}
    resolved = await_all(
        lambda: (
            after_restart <= {e["involvedObject"]["name"] for e in _events(ha.rest, run.namespace, "MemoryResolved")}
        ),
        BOUND,
        "a MemoryResolved Event for every FlinkDeployment created after the restart",
    )
    assert resolved
    assert _restarts(ha) == before, "no replica restarted: the watches recovered without a crash"
    figures.append(
        {
            "case": "kube-apiserver restarted under load",
            "s the API server took to stop": stop_took,
            "s the API server was unavailable (stop to /readyz ok)": back - stopped,
            "s after it was back until a new FlinkDeployment was annotated": first,
            "replica restarts": 0,
            **outcome,
        }
    )


def _readyz(address: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{address}:8080/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _review(ha: Ha, address: str, ca_pem: bytes, body: dict[str, Any]) -> dict[str, Any] | None:
    """The answer of one replica to a review sent as the API server sends it; None: not served."""
    status, answer = send_review(address, ca_pem, body, ha.plane.layout.pki.webhook_client)
    return answer if status == 200 else None


def test_a_replica_starting_while_the_api_server_is_down(ha: Ha, figures: list[dict[str, Any]]) -> None:
    victim = _settled(ha)[0]
    ca_pem = base64.b64decode(
        ha.rest.get(f"/api/v1/namespaces/{RELEASE_NAMESPACE}/secrets/flinkmem-tls").body["data"]["ca.crt"]
    )
    runner = ha.kubelet.pod(victim.name)
    with _under_load(ha, "startdown") as run:
        down = run.fault()
        ha.plane.stop_apiserver()
        runner.kill()
        # Longer than kopf's default retries (about a minute), after which an operator gives up.
        samples, served = [], 0
        while time.monotonic() - down < 75:
            samples.append(_readyz(victim.ip))
            if _review(ha, victim.ip, ca_pem, flinkdeployment("x", {"jobmanager.memory.heap.size": "4g"}, "1g")):
                served += 1
            time.sleep(0.5)
        exits = [r for r in ha.kubelet.records(since=down) if r.pod == victim.name and r.what == "exited"]
        crashed = len(exits) - 1  # the kill itself is one
        started = runner.view().pid is not None
        ha.plane.start_apiserver()
        up = time.monotonic()
        _, ready_after = await_all(lambda: _readyz(victim.ip) == 200, BOUND, "the restarted replica ready")
        conflicting = _review(ha, victim.ip, ca_pem, flinkdeployment("x", {"jobmanager.memory.heap.size": "4g"}, "1g"))
        valid = _review(ha, victim.ip, ca_pem, flinkdeployment("y", {}, "2g"))
        time.sleep(5)
        outcome = run.finish()
    assert started, "the kubelet started the container again while the API server was down"
    assert 200 not in samples, "/readyz said ready while the API server was down"
    assert served == 0, "an admission was answered before the replica could serve correctly"
    assert crashed == 0, "the replica exited while waiting for the API server (crash loop)"
    assert conflicting is not None and conflicting["allowed"] is False
    assert "flinkmem refused" in conflicting["status"]["message"]
    assert valid is not None and valid["allowed"] is True
    figures.append(
        {
            "case": "a replica (re)started while kube-apiserver is down (75 s)",
            "/readyz answers while down (never 200)": f"{len(samples)}, {sorted(set(samples))}",
            "exits while waiting": crashed,
            "s after the API server was back until /readyz 200": ready_after,
            "s the API server was unavailable": up - down,
            **outcome,
        }
    )
