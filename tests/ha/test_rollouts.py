"""Planned disruptions under the same steady load as the faults: nothing may be refused or unsized.

- ``helm upgrade`` to another image tag (a rolling update: maxSurge 1, maxUnavailable 0);
- ``kubectl rollout restart``;
- a drain of both replicas' nodes at once (cordon, evictions through the PodDisruptionBudget, which
  lets the replicas go one by one, uncordon), each as ``kubectl drain`` does it.

Each replica that goes is deleted, so it is out of the Service's endpoints at once; the kubelet runs
the chart's preStop sleep, then SIGTERM: flinkmem answers a little longer, closes its port, answers
what is in flight and exits (runtime/serve.py). The checks are counts (zero refused FlinkDeployments,
zero unsized pods, nothing lost); the times are figures, printed at the end.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.ha.conftest import CHART, RELEASE, RELEASE_NAMESPACE, REPLICAS, RUNTIME, Ha, _helm
from tests.ha.harness import await_all
from tests.ha.test_faults import BOUND, Run, _settled, _under_load

pytestmark = pytest.mark.e2e

DEPLOYMENT = f"/apis/apps/v1/namespaces/{RELEASE_NAMESPACE}/deployments/{RELEASE}"
NEXT = "-next"


def _image(ha: Ha) -> str:
    deployment = ha.rest.get(DEPLOYMENT).body
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture(scope="module")
def next_tag(ha: Ha) -> Iterator[str]:
    """A second tag of the image under test (the same image: the rolling update is what is tested)."""
    image = _image(ha)
    tagged = image + NEXT
    if RUNTIME == "podman":
        done = subprocess.run(
            ["podman", "--runtime=runc", "--cgroup-manager=cgroupfs", "tag", image, tagged],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    yield tagged.rpartition(":")[2]


def _rolled_out(ha: Ha) -> bool:
    """Every replica of the current template available, and the old pods gone (stopped, removed)."""
    ha.kubelet.check()
    deployment = ha.rest.get(DEPLOYMENT).body
    status = deployment.get("status") or {}
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == REPLICAS
        and status.get("availableReplicas") == REPLICAS
        and status.get("replicas") == REPLICAS
        and len(ha.kubelet.pods()) == REPLICAS
    )


def _stops(ha: Ha, since: float) -> dict[str, Any]:
    """How the replicas that went stopped: the whole stop (preStop included) and SIGTERM to exit."""
    records = ha.kubelet.records(since=since)
    whole = [float(r.detail) for r in records if r.what == "stopped"]
    after_sigterm = [float(r.detail) for r in records if r.what == "sigterm-to-exit"]
    return {
        "replicas stopped": len(whole),
        "longest stop, preStop included (s)": max(whole, default=0.0),
        "longest SIGTERM to exit (s)": max(after_sigterm, default=0.0),
        "replica containers that exited by themselves": len([r for r in records if r.what == "exited"]),
    }


def _nothing_refused(run: Run) -> dict[str, Any]:
    outcome = run.finish()
    refused = outcome["  refused, flinkmem unreachable (fail closed)"]
    unsized = outcome["  admitted unsized (fail open)"]
    assert (refused, unsized) == (0, 0), f"{refused} FlinkDeployments refused, {unsized} pods unsized"
    return outcome


def test_helm_upgrade_to_another_image_under_load(ha: Ha, next_tag: str, figures: list[dict[str, Any]]) -> None:
    _settled(ha)
    with _under_load(ha, "upgrade") as run:
        started = run.fault()
        _helm(ha.plane, "upgrade", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--reuse-values",
              "--set", f"image.tag={next_tag}")  # fmt: skip
        _, rolled = await_all(lambda: _rolled_out(ha), BOUND, "the upgrade rolled out")
        assert _image(ha).endswith(next_tag)
        time.sleep(5)
        outcome = _nothing_refused(run)
    figures.append(
        {
            "case": "helm upgrade to another image tag (rolling update) under load",
            "s from helm upgrade until rolled out, old pods gone": rolled,
            **_stops(ha, started),
            **outcome,
        }
    )


def test_rollout_restart_under_load(ha: Ha, figures: list[dict[str, Any]]) -> None:
    _settled(ha)
    with _under_load(ha, "restart") as run:
        started = run.fault()
        restarted = ha.plane.cluster.kubectl(
            "rollout", "restart", f"deployment/{RELEASE}", "-n", RELEASE_NAMESPACE, check=False
        )
        assert restarted.returncode == 0, restarted.stderr
        _, rolled = await_all(lambda: _rolled_out(ha), BOUND, "the restart rolled out")
        time.sleep(5)
        outcome = _nothing_refused(run)
    figures.append(
        {
            "case": "kubectl rollout restart under load",
            "s until rolled out, old pods gone": rolled,
            **_stops(ha, started),
            **outcome,
        }
    )


def test_draining_the_nodes_one_by_one_under_load(ha: Ha, figures: list[dict[str, Any]]) -> None:
    """Both replicas' nodes drained at the same time (two `kubectl drain`s, or an upgrade tool): the
    PodDisruptionBudget (minAvailable 1) lets one eviction through and refuses the other (429) until
    the first replica's replacement is ready; then the nodes are uncordoned."""
    pods = _settled(ha)
    with _under_load(ha, "drain") as run:
        started = run.fault()
        with ThreadPoolExecutor(max_workers=len(pods)) as pool:
            futures = [pool.submit(ha.kubelet.drain, pod.node, BOUND) for pod in pods]
            try:
                drains = [future.result() for future in futures]
            finally:
                for pod in pods:
                    ha.kubelet.cordon(pod.node, unschedulable=False)  # maintenance done
        drained = time.monotonic() - started
        await_all(lambda: _rolled_out(ha), BOUND, "both replicas back after the drains")
        back = time.monotonic() - started
        time.sleep(5)
        outcome = _nothing_refused(run)
    assert sorted(name for d in drains for name in d.pods) == sorted(p.name for p in pods)
    assert sum(d.refused for d in drains) > 0, "the PodDisruptionBudget held one eviction back"
    figures.append(
        {
            "case": "both replicas' nodes drained at once; the PDB lets them go one by one, under load",
            "evictions refused by the PDB (429, retried every 5 s)": sum(d.refused for d in drains),
            "s until both drained pods were gone": drained,
            "s from the drains until both replicas were back": back,
            **_stops(ha, started),
            **outcome,
        }
    )
