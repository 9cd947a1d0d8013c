"""What a cluster's size costs flinkmem: a private local control plane loaded with 1,000 and then 5,000
FlinkDeployments and 20,000 pods of other applications in watched namespaces. Prints figures; asserts
nothing.

Measured at each size: the controller's memory (RSS and PSS, from /proc) and CPU at rest; the webhook
process's memory; the time `flinkmem serve` takes after a restart until it is ready and until its
controller has gone through every object (its CPU falls quiet; nothing needs writing, as the
FlinkDeployments carry their current resolved-memory annotation); and the time to admit a burst of
500 TaskManager-like pods at concurrency 50 with flinkmem, with no webhook, and with the no-op floor
(registered with flinkmem's rules, and once more with a webhook that selects TaskManager pods, which is
what any webhook sizing them will cost). While the unrelated pods are created (at the first size) the
controller's CPU per pod and its memory growth per 1,000 pods are measured. The last table gives how
each cost grows from the first size to the second.

    .venv/bin/python benchmarks/scale.py [--sizes 1000 5000] [--unrelated-pods 20000]
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import floor, gotools, objects, plane, procstat
from benchmarks.labelselect import selecting_webhook_path
from flinkmem.conventions import RESOLVED_ANNOTATION
from flinkmem.decisions.reconcile import reconcile_deployment
from flinkmem.runtime.webhookconfig import mutating_configuration
from localplane import controlplane
from localplane.serve import RunningOperator, running_flinkmem

FLINKMEM_USER = "flinkmem-bench"
FLINK_NAMESPACE = "scale-flink"
APPS_NAMESPACE = "scale-apps"
BURST = 500
BURST_CONCURRENCY = 50
BURST_RUNS = 3
REST_SECONDS = 15.0
QUIET_WINDOW = 3.0
QUIET_SHARE = 0.03  # of one core: below this over the window, the controller is at rest
MiB = 1024 * 1024
NO_MEMORY = procstat.Memory(0, 0)


@dataclass
class Flinkmem:
    """The running `flinkmem serve` and its processes."""

    operator: RunningOperator

    @property
    def pid(self) -> int:
        return self.operator.process.pid

    def controller(self) -> set[int]:
        return procstat.process_tree(self.pid) - {self.pid}

    def webhook(self) -> set[int]:
        return {self.pid}


@dataclass
class SizeFigures:
    deployments: int
    create_rate: float = 0.0
    controller_ms_per_fd: float = 0.0
    rest_cpu_share: float = 0.0
    controller_memory: procstat.Memory = NO_MEMORY
    webhook_memory: procstat.Memory = NO_MEMORY
    ready_seconds: float = 0.0
    reconcile_seconds: float = 0.0
    controller_cpu_after_restart: float = 0.0
    memory_after_restart: procstat.Memory = NO_MEMORY
    peak_after_restart: int = 0  # controller's highest RSS since its start against the loaded cluster
    bursts: dict[str, list[gotools.LoadResult]] = field(default_factory=dict)


STARTED = time.monotonic()


def step(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def wait_quiet(pids: Callable[[], set[int]], timeout: float = 900.0) -> float:
    """Waits until the processes use less than QUIET_SHARE of a core over QUIET_WINDOW seconds; returns
    the moment that quiet window began (time.monotonic)."""
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        samples.append((now, procstat.cpu_seconds(pids())))
        window = [s for s in samples if s[0] >= now - QUIET_WINDOW]
        if now - samples[0][0] >= QUIET_WINDOW and window[-1][1] - window[0][1] < QUIET_SHARE * QUIET_WINDOW:
            return window[0][0]
        time.sleep(0.25)
    raise RuntimeError(f"the controller did not come to rest in {timeout:.0f} s")


def annotated_deployment(name: str, namespace: str) -> dict[str, Any]:
    """A FlinkDeployment that already carries the annotation flinkmem's controller would write."""
    fd = objects.flinkdeployment(name, namespace)
    annotation = reconcile_deployment(fd, objects.CONTAINER).annotation
    fd["metadata"]["annotations"] = {RESOLVED_ANNOTATION: annotation}
    return fd


class Loader:
    def __init__(self, loadgen: Path, layout: controlplane.Layout) -> None:
        self.loadgen = loadgen
        self.tls = plane.admin_tls(layout)

    def create(
        self, path: str, body: dict[str, Any], *, count: int, start: int, concurrency: int
    ) -> gotools.LoadResult:
        return gotools.run_load(
            self.loadgen,
            f"{self.tls.server}{path}",
            json.dumps(body).encode(),
            concurrency=concurrency,
            count=count,
            start=start,
            expect=201,
            ca=self.tls.ca,
            client_cert=(self.tls.cert, self.tls.key),
        )


@contextmanager
def flinkmem_running(identity: controlplane.Cluster, workdir: Path) -> Iterator[tuple[Flinkmem, float]]:
    started = time.monotonic()
    with running_flinkmem(identity.kubeconfig, workdir, ["--service-account", FLINKMEM_USER]) as op:
        yield Flinkmem(op), time.monotonic() - started


def tm_selecting(configuration: dict[str, Any]) -> dict[str, Any]:
    """flinkmem's mutating configuration plus a webhook for TaskManager pods (what sizing them adds)."""
    extended = copy.deepcopy(configuration)
    extra = copy.deepcopy(extended["webhooks"][0])
    extra["name"] = "taskmanager.noop.flinkmem.io"
    extra["objectSelector"] = {
        "matchExpressions": [
            {"key": "component", "operator": "In", "values": ["taskmanager"]},
            {"key": "type", "operator": "In", "values": ["flink-native-kubernetes"]},
        ]
    }
    extended["webhooks"].append(extra)
    return extended


def burst(cluster: controlplane.Cluster, loader: Loader, label: str, start: int, figures: SizeFigures) -> None:
    step(f"{BURST_RUNS} bursts of {BURST} TaskManager pods, {label}")
    pod = objects.taskmanager_pod("tm-{{N}}", "fd-0", FLINK_NAMESPACE)
    for run in range(BURST_RUNS):
        result = loader.create(
            f"/api/v1/namespaces/{FLINK_NAMESPACE}/pods",
            pod,
            count=BURST,
            start=start + run * BURST,
            concurrency=BURST_CONCURRENCY,
        )
        figures.bursts.setdefault(label, []).append(result)
        plane.delete_pods(loader.tls, FLINK_NAMESPACE, "component%3Dtaskmanager")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="FlinkDeployments, growing")
    parser.add_argument("--unrelated-pods", type=int, default=20000, help="pods of other applications")
    args = parser.parse_args()
    os.environ.pop("KUBECONFIG", None)
    loadgen, noop_binary = gotools.build("loadgen"), gotools.build("noop")
    scratch = Path(tempfile.mkdtemp(prefix="flinkmem-scale-"))
    layout = controlplane.Layout(scratch / "cluster")
    started = time.monotonic()
    with controlplane.session_cluster(scratch, layout) as cluster:
        run(args, cluster, layout, loadgen, noop_binary)
    print(f"\nWall time: {time.monotonic() - started:.0f} s")
    return 0


def run(
    args: argparse.Namespace,
    cluster: controlplane.Cluster,
    layout: controlplane.Layout,
    loadgen: Path,
    noop_binary: Path,
) -> None:
    identity = cluster.user(FLINKMEM_USER, ["system:masters"])
    loader = Loader(loadgen, layout)
    for namespace in (FLINK_NAMESPACE, APPS_NAMESPACE):
        plane.create_namespace(cluster, namespace)
    print(f"# Scale benchmark: {os.cpu_count()} cores shared with other work; nothing pinned\n")
    unrelated: list[tuple[int, float, float, procstat.Memory]] = []  # pods, controller ms/pod, webhook ms/pod, mem
    sizes: list[SizeFigures] = []
    created = 0
    for index, size in enumerate(args.sizes):
        with flinkmem_running(identity, scratch_dir(cluster, f"flinkmem-{index}")) as (fm, _):
            # A later size's controller starts by listing everything already there; that is measured
            # by the restart below, not charged to the FlinkDeployments created next.
            wait_quiet(fm.controller)
            if index == 0:
                unrelated.append((0, 0.0, 0.0, procstat.memory(fm.controller())))
            figures = SizeFigures(size)
            step(f"creating FlinkDeployments {created:,} to {size:,}")
            before = procstat.cpu_seconds(fm.controller())
            result = loader.create(
                f"/apis/flink.apache.org/v1beta1/namespaces/{FLINK_NAMESPACE}/flinkdeployments",
                annotated_deployment("fd-{{N}}", FLINK_NAMESPACE),
                count=size - created,
                start=created,
                concurrency=16,
            )
            figures.create_rate = result.rate
            wait_quiet(fm.controller)
            figures.controller_ms_per_fd = (procstat.cpu_seconds(fm.controller()) - before) * 1000 / (size - created)
            created = size
            if index == 0:
                half = args.unrelated_pods // 2
                for first in (0, half):
                    step(f"creating unrelated pods {first:,} to {first + half:,}")
                    controller_before = procstat.cpu_seconds(fm.controller())
                    webhook_before = procstat.cpu_seconds(fm.webhook())
                    loader.create(
                        f"/api/v1/namespaces/{APPS_NAMESPACE}/pods",
                        objects.unrelated_pod("web-{{N}}", APPS_NAMESPACE),
                        count=half,
                        start=first,
                        concurrency=32,
                    )
                    wait_quiet(fm.controller)
                    unrelated.append(
                        (
                            first + half,
                            (procstat.cpu_seconds(fm.controller()) - controller_before) * 1000 / half,
                            (procstat.cpu_seconds(fm.webhook()) - webhook_before) * 1000 / half,
                            procstat.memory(fm.controller()),
                        )
                    )
            step("at rest")
            before = procstat.cpu_seconds(fm.controller())
            time.sleep(REST_SECONDS)
            figures.rest_cpu_share = (procstat.cpu_seconds(fm.controller()) - before) / REST_SECONDS
            figures.controller_memory = procstat.memory(fm.controller())
            figures.webhook_memory = procstat.memory(fm.webhook())
            burst(cluster, loader, "flinkmem", size * 10, figures)
            mutating = json.loads(cluster.kubectl("get", "mutatingwebhookconfiguration/flinkmem", "-o", "json").stdout)
        burst(cluster, loader, "no webhook", size * 10 + 2000, figures)
        noop_certs = scratch_dir(cluster, "noop-certs")
        with floor.go_noop(noop_binary, noop_certs) as go, floor.registered(cluster, go):
            time.sleep(2)  # the API server picks up new webhook configurations within a second
            burst(cluster, loader, "no-op, flinkmem's rules", size * 10 + 4000, figures)
            ca_bundle = base64.b64encode(go.ca.read_bytes()).decode()
            extended = tm_selecting(mutating_configuration(go.url, ca_bundle))
            cluster.kubectl("apply", "-f", "-", input=json.dumps(extended))
            time.sleep(2)
            burst(cluster, loader, "no-op, also selecting TaskManager pods", size * 10 + 6000, figures)
        step("restart")
        # The restart: flinkmem starts against a cluster of `size` FlinkDeployments and all the pods.
        started = time.monotonic()
        with flinkmem_running(identity, scratch_dir(cluster, f"flinkmem-restart-{index}")) as (fm, ready):
            figures.ready_seconds = ready
            quiet = wait_quiet(fm.controller)
            figures.reconcile_seconds = quiet - started
            figures.controller_cpu_after_restart = procstat.cpu_seconds(fm.controller())
            figures.memory_after_restart = procstat.memory(fm.controller())
            figures.peak_after_restart = procstat.peak_rss(fm.controller())
        sizes.append(figures)
        tm_path = selecting_webhook_path(mutating, objects.taskmanager_pod("x", "y", "z")["metadata"]["labels"])
        step(f"size {size:,} done")
    report(args, unrelated, sizes, tm_path)


def scratch_dir(cluster: controlplane.Cluster, name: str) -> Path:
    return cluster.scratch_dir / name


def _burst_cell(runs: list[gotools.LoadResult]) -> str:
    seconds = sorted(r.seconds for r in runs)
    p99 = statistics.median(r.p99_ms for r in runs)
    return f"{statistics.median(seconds):.2f} s ({seconds[0]:.2f}–{seconds[-1]:.2f}), p99 {p99:.0f} ms"


def _burst_seconds(figures: SizeFigures) -> float:
    return statistics.median(r.seconds for r in figures.bursts["flinkmem"])


def _mib(value: int) -> str:
    return f"{value / MiB:.0f}"


def report(
    args: argparse.Namespace,
    unrelated: list[tuple[int, float, float, procstat.Memory]],
    sizes: list[SizeFigures],
    tm_path: str | None,
) -> None:
    first = sizes[0].deployments
    print(f"## Unrelated pods (created at concurrency 32 with {first:,} FlinkDeployments present)\n")
    print("| unrelated pods | controller CPU per pod created | webhook process CPU per pod | controller RSS / PSS |")
    print("|---|---|---|---|")
    for pods, controller_ms, webhook_ms, memory in unrelated:
        cpu = f"{controller_ms:.3f} ms | {webhook_ms:.3f} ms" if pods else "– | –"
        print(f"| {pods:,} | {cpu} | {_mib(memory.rss)} / {_mib(memory.pss)} MiB |")
    if len(unrelated) > 1:
        grown = unrelated[-1][3].pss - unrelated[0][3].pss
        print(f"\nController PSS growth: {grown / MiB / (unrelated[-1][0] / 1000):.2f} MiB per 1,000 unrelated pods.")
    print(f"\n## By number of FlinkDeployments ({args.unrelated_pods:,} unrelated pods present)\n")
    print(
        "The running controller of the first size started on an empty cluster and saw the pods arrive one by "
        "one; those of later sizes started by listing them all. The restart columns compare like with like.\n"
    )
    print(
        "| FlinkDeployments | created through the webhook | controller CPU per FlinkDeployment created "
        "| controller CPU at rest | controller RSS / PSS (running) | webhook RSS / PSS | all flinkmem PSS "
        "| restart: ready | restart: everything gone through | controller CPU for it | controller PSS after "
        "| controller peak RSS after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f in sizes:
        print(
            f"| {f.deployments:,} | {f.create_rate:,.0f}/s | {f.controller_ms_per_fd:.2f} ms "
            f"| {f.rest_cpu_share * 100:.1f}% of a core | {_mib(f.controller_memory.rss)} / "
            f"{_mib(f.controller_memory.pss)} MiB | {_mib(f.webhook_memory.rss)} / {_mib(f.webhook_memory.pss)} MiB "
            f"| {_mib(f.controller_memory.pss + f.webhook_memory.pss)} MiB | {f.ready_seconds:.1f} s "
            f"| {f.reconcile_seconds:.1f} s | {f.controller_cpu_after_restart:.1f} s "
            f"| {_mib(f.memory_after_restart.pss)} MiB | {_mib(f.peak_after_restart)} MiB |"
        )
    selected = "selects" if tm_path else "does not select"
    print(
        f"\n## A burst of {BURST} TaskManager-like pods at concurrency {BURST_CONCURRENCY} "
        f"(flinkmem's webhook configuration {selected} them; median (min–max) of {BURST_RUNS} bursts)\n"
    )
    setups = list(sizes[0].bursts)
    print("| FlinkDeployments | " + " | ".join(f"{setup}: all admitted, p99" for setup in setups) + " |")
    print("|---|" + "---|" * len(setups))
    for f in sizes:
        cells = [_burst_cell(f.bursts[setup]) for setup in setups]
        print(f"| {f.deployments:,} | " + " | ".join(cells) + " |")
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        factor = b.deployments / a.deployments
        print(f"\n## Growth from {a.deployments:,} to {b.deployments:,} FlinkDeployments ({factor:g}×)\n")
        print("| cost | at the first size | at the second | ratio |\n|---|---|---|---|")
        rows = [
            (
                "controller PSS, started against the loaded cluster",
                a.memory_after_restart.pss / MiB,
                b.memory_after_restart.pss / MiB,
                "MiB",
            ),
            ("controller peak RSS, same start", a.peak_after_restart / MiB, b.peak_after_restart / MiB, "MiB"),
            ("webhook PSS", a.webhook_memory.pss / MiB, b.webhook_memory.pss / MiB, "MiB"),
            ("controller CPU at rest (% of a core)", a.rest_cpu_share * 100, b.rest_cpu_share * 100, "%"),
            ("restart until everything is gone through", a.reconcile_seconds, b.reconcile_seconds, "s"),
            ("controller CPU for the restart", a.controller_cpu_after_restart, b.controller_cpu_after_restart, "s"),
            (
                "burst of 500 TaskManager pods, flinkmem",
                _burst_seconds(a),
                _burst_seconds(b),
                "s",
            ),
        ]
        for name, x, y, unit in rows:
            ratio = f"{y / x:.2f}×" if x > 0 else "–"
            print(f"| {name} | {x:.2f} {unit} | {y:.2f} {unit} | {ratio} |")
        # Compared on the same footing: both processes started against the loaded cluster. The first
        # size's running controller saw the unrelated pods arrive one by one instead, so its memory
        # is not comparable with the second's, which started by listing them all.
        per_fd = (b.memory_after_restart.pss - a.memory_after_restart.pss) / (b.deployments - a.deployments)
        print(f"\nController PSS per FlinkDeployment (started against the loaded cluster): {per_fd / 1024:.1f} KiB.")


if __name__ == "__main__":
    sys.exit(main())
