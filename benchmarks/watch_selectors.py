"""Can kopf filter flinkmem's pod watches in the API server? A check against a real kube-apiserver, for
issue 14 (unrelated pods must not cost the controller per event). Prints what each watch received.

kopf opens one watch stream per resource (per namespace when namespaced) and joins every label
selector configured for that resource in `settings.watching.label_selectors` with a comma, which
the API server reads as AND. So one operator can narrow its pod watch to
`component in (jobmanager,taskmanager)`, but cannot add the opt-in pods (`flinkmem.io/jobmanager=true`,
any component) to it: that needs an OR across two keys. This script shows both, and tries the way
around it that keeps kopf: a second `kopf.operator` in the same process and event loop, with its own
registry and settings, whose pod watch selects the opt-in label.

An unfiltered handler in each operator records every event its watch delivers, so a pod that reaches
no handler was filtered by the API server, not by kopf.

    .venv/bin/python benchmarks/watch_selectors.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kopf

from benchmarks import objects, plane
from localplane import controlplane

NAMESPACE = "selectors"
ROLE_SELECTOR = "component in (jobmanager,taskmanager)"
OPT_IN_SELECTOR = "flinkmem.io/jobmanager=true"


def pods() -> list[dict[str, Any]]:
    opted_in = objects.unrelated_pod("opted-in", NAMESPACE)
    opted_in["metadata"]["labels"]["flinkmem.io/jobmanager"] = "true"
    return [
        objects.jobmanager_pod("jobmanager", "fd", NAMESPACE),
        objects.taskmanager_pod("taskmanager", "fd", NAMESPACE),
        opted_in,
        objects.unrelated_pod("unrelated", NAMESPACE),
    ]


def operator_settings(selector: str) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.watching.label_selectors["v1", "pods"] = selector
    settings.posting.enabled = False
    return settings


def registry_recording(seen: dict[str, set[str]], stream: str) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)  # reads $KUBECONFIG now, not at import

    @kopf.on.event("", "v1", "pods", registry=registry)
    def record(name: str, **_: Any) -> None:
        seen[stream].add(name)

    del login, record
    return registry


async def run_operators(cluster: controlplane.Cluster, seen: dict[str, set[str]]) -> None:
    stop = asyncio.Event()
    ready = [threading.Event(), threading.Event()]
    operators = [
        asyncio.create_task(
            kopf.operator(
                registry=registry_recording(seen, selector),
                settings=operator_settings(selector),
                standalone=True,
                clusterwide=True,
                stop_flag=stop,
                ready_flag=flag,
            )
        )
        for selector, flag in ((ROLE_SELECTOR, ready[0]), (OPT_IN_SELECTOR, ready[1]))
    ]
    for flag in ready:
        await asyncio.to_thread(flag.wait, 60)
    await asyncio.sleep(2)  # both watch streams are open once the initial listings are done
    for pod in pods():
        await asyncio.to_thread(cluster.kubectl, "apply", "-f", "-", input=json.dumps(pod))
    await asyncio.sleep(5)
    stop.set()
    await asyncio.gather(*operators, return_exceptions=True)


def main() -> int:
    os.environ.pop("KUBECONFIG", None)
    scratch = Path(tempfile.mkdtemp(prefix="flinkmem-selectors-"))
    layout = controlplane.Layout(scratch / "cluster")
    with controlplane.session_cluster(scratch, layout) as cluster:
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        plane.create_namespace(cluster, NAMESPACE)
        seen: dict[str, set[str]] = defaultdict(set)
        asyncio.run(run_operators(cluster, seen))
    print("| pod | labels | watch with labelSelector=" + ROLE_SELECTOR + " | watch with " + OPT_IN_SELECTOR + " |")
    print("|---|---|---|---|")
    for pod in pods():
        name, labels = pod["metadata"]["name"], pod["metadata"]["labels"]
        cells = ["received" if name in seen[s] else "filtered out" for s in (ROLE_SELECTOR, OPT_IN_SELECTOR)]
        label_text = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        print(f"| {name} | {label_text} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
