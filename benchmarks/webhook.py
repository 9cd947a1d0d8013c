"""What a review costs: flinkmem's webhooks against the cheapest webhook we can build. Prints figures,
ratios and the targets of issue 14; asserts nothing.

(a) Direct reviews. AdmissionReviews posted straight to each webhook over HTTPS keep-alive connections
    by a Go load generator (`loadgen/`) at concurrency 1, 8 and 32, for four kinds: a valid
    FlinkDeployment, a refused one, a JobManager pod (flinkmem reads its FlinkDeployment from the
    real API server: the owner lookup is included) and a TaskManager pod (sent to the webhook that
    flinkmem's configuration selects for it; "not sized yet" while flinkmem leaves it unchanged).
    The same reviews go to the floor, a compiled no-op webhook (`noop/`, Go), and to the Python
    no-op (`noop_webhook.py`). All three servers run at once, pinned to one core (unless --no-pin),
    the load generator to the other, and the runs are interleaved (flinkmem, floor, Python no-op) and
    repeated, so the machine's noise hits them alike. CPU per review is read from /proc: every
    process of the server under test (flinkmem's webhook process and its controller child), the
    API server and etcd apart (they serve the owner lookups), and the load generator apart.
(b) Through the real kube-apiserver: FlinkDeployments and JobManager pods created at a steady
    100/s, then at concurrency 50, with no webhook (the baseline), with the Go no-op registered
    under flinkmem's rules, and with flinkmem: p50/p99, and the CPU each process spent per create.

    .venv/bin/python benchmarks/webhook.py [--requests N] [--repeat N] [--creates N]
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import floor, gotools, objects, plane, procstat
from benchmarks.labelselect import selecting_webhook_path
from flinkmem.conventions import MUTATE_ID, VALIDATE_ID
from flinkmem.runtime.devsetup import bundled_crd
from localplane import controlplane
from localplane.serve import RunningOperator, running_flinkmem

FLINKMEM_USER = "flinkmem-bench"
NAMESPACE = "bench"
OWNER = "owner"
CONCURRENCY = (1, 8, 32)
HEADLINE_CONCURRENCY = 8
PACED_RATE = 100
PACED_TOTAL = 1000
SETTLE_SECONDS = 10
# Issue 14's targets, printed beside the figures.
FD_CPU_TARGET_MS = 0.35
POD_CPU_TARGET_MS = 0.6
REFUSED_RATE_TARGET = 1500
REFUSED_P99_TARGET_MS = 5.0


@dataclass(frozen=True)
class Kind:
    name: str
    body: bytes  # an AdmissionReview template ({{N}} numbers the uid)
    path: str | None  # where flinkmem's configuration sends it; None when no webhook selects it
    allowed: bool  # flinkmem's answer
    patched: bool
    pod: bool


@dataclass(frozen=True)
class Sample:
    load: gotools.LoadResult
    cpu_ms: dict[str, float]  # CPU per review by process group

    def server_ms(self) -> float:
        return sum(v for k, v in self.cpu_ms.items() if k not in ("API server + etcd", "load generator"))


@dataclass(frozen=True)
class Target:
    """A server under test: its process groups (CPU is summed over them) and where it listens."""

    name: str
    url: str
    ca: Path
    groups: Callable[[], dict[str, set[int]]]
    check_answers: bool  # only flinkmem's answers are checked for their decision


def kinds(mutating: dict[str, object]) -> list[Kind]:
    tm = objects.taskmanager_pod("tm-{{N}}", OWNER, NAMESPACE)
    tm_path = selecting_webhook_path(mutating, tm["metadata"]["labels"])
    jm = objects.jobmanager_pod("jm-{{N}}", OWNER, NAMESPACE)
    jm_path = selecting_webhook_path(mutating, jm["metadata"]["labels"]) or f"/{MUTATE_ID}"
    return [
        Kind(
            "FlinkDeployment, valid",
            objects.review("bench-{{N}}", objects.flinkdeployment("fd-{{N}}", NAMESPACE)),
            f"/{VALIDATE_ID}",
            True,
            False,
            False,
        ),
        Kind(
            "FlinkDeployment, refused",
            objects.review("bench-{{N}}", objects.flinkdeployment("fd-{{N}}", NAMESPACE, refused=True)),
            f"/{VALIDATE_ID}",
            False,
            False,
            False,
        ),
        Kind("JobManager pod", objects.review("bench-{{N}}", jm), jm_path, True, True, True),
        Kind("TaskManager pod", objects.review("bench-{{N}}", tm), tm_path, True, False, True),
    ]


def _post(url: str, ca: Path, body: bytes) -> dict[str, object]:
    request = urllib.request.Request(url, body.replace(b"{{N}}", b"probe"), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=str(ca)), timeout=10) as answer:
        payload: dict[str, object] = json.loads(answer.read())
    return payload


def tm_status(kind: Kind, flinkmem_url: str, ca: Path) -> str:
    """Whether flinkmem sizes TaskManager pods yet, from one answer."""
    if kind.path is None:
        return "not sized yet: no flinkmem webhook selects TaskManager pods; sent to the JobManager one"
    response = _post(flinkmem_url + kind.path, ca, kind.body).get("response")
    if isinstance(response, dict) and response.get("patch"):
        return "sized"
    return "not sized yet: flinkmem answers without a patch"


def measure(
    loadgen: Path,
    target: Target,
    kind: Kind,
    concurrency: int,
    count: int,
    warmup: int,
    control_plane: dict[str, set[int]],
    load_prefix: Sequence[str],
) -> Sample:
    path = kind.path or f"/{MUTATE_ID}"
    groups = target.groups()
    api = set().union(control_plane["kube-apiserver"], control_plane["etcd"])
    # The warm-up runs first inside the load generator; CPU is read around the whole run, so the
    # warm-up requests are counted too (the division uses them).
    before = {name: procstat.cpu_seconds(pids) for name, pids in groups.items()}
    api_before = procstat.cpu_seconds(api)
    result = gotools.run_load(
        loadgen,
        target.url + path,
        kind.body,
        concurrency=concurrency,
        count=count,
        warmup=warmup,
        allowed=kind.allowed if target.check_answers else True,
        patched=kind.patched and target.check_answers,
        ca=target.ca,
        command_prefix=load_prefix,
    )
    total = count + warmup
    cpu = {name: (procstat.cpu_seconds(pids) - before[name]) * 1000 / total for name, pids in groups.items()}
    cpu["API server + etcd"] = (procstat.cpu_seconds(api) - api_before) * 1000 / total
    cpu["load generator"] = result.cpu_seconds * 1000 / count
    return Sample(result, cpu)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _spread(values: Sequence[float], digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{_median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _rate_spread(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{_median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def direct_phase(
    args: argparse.Namespace,
    loadgen: Path,
    noop_binary: Path,
    operator: RunningOperator,
    cluster: controlplane.Cluster,
    layout: controlplane.Layout,
    pinned: list[str],
    load_prefix: list[str],
) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(objects.flinkdeployment(OWNER, NAMESPACE)))
    mutating = json.loads(cluster.kubectl("get", "mutatingwebhookconfiguration/flinkmem", "-o", "json").stdout)
    review_kinds = kinds(mutating)
    tm_kind = next(k for k in review_kinds if k.name == "TaskManager pod")
    tm = tm_status(tm_kind, operator.webhook_url, operator.ca_file)
    serve_pid = operator.process.pid
    scratch = cluster.scratch_dir

    def flinkmem_groups() -> dict[str, set[int]]:
        tree = procstat.process_tree(serve_pid)
        return {"flinkmem webhook": {serve_pid}, "flinkmem controller": tree - {serve_pid}}

    control_plane = plane.control_plane_pids(layout)
    samples: dict[tuple[str, str, int], list[Sample]] = {}
    with (
        floor.go_noop(noop_binary, scratch / "go-noop-certs", pinned) as go,
        floor.python_noop(scratch / "py-noop-certs", pinned) as py,
    ):
        targets = [
            Target("flinkmem", operator.webhook_url, operator.ca_file, flinkmem_groups, True),
            Target("floor (Go no-op)", go.url, go.ca, lambda: {"server": procstat.process_tree(go.pid)}, False),
            Target("Python no-op", py.url, py.ca, lambda: {"server": procstat.process_tree(py.pid)}, False),
        ]
        started = time.monotonic()
        for repeat in range(args.repeat):
            for kind in review_kinds:
                for concurrency in CONCURRENCY:
                    for target in targets:
                        sample = measure(
                            loadgen,
                            target,
                            kind,
                            concurrency,
                            args.requests,
                            args.warmup,
                            control_plane,
                            load_prefix,
                        )
                        samples.setdefault((target.name, kind.name, concurrency), []).append(sample)
            print(f"direct reviews: round {repeat + 1} of {args.repeat} done", file=sys.stderr)
        elapsed = time.monotonic() - started
    report_direct(args, review_kinds, targets, samples, tm, elapsed)


def report_direct(
    args: argparse.Namespace,
    review_kinds: list[Kind],
    targets: list[Target],
    samples: dict[tuple[str, str, int], list[Sample]],
    tm: str,
    elapsed: float,
) -> None:
    c = HEADLINE_CONCURRENCY
    print(
        f"\n## Direct reviews ({args.requests} per run after {args.warmup} of warm-up, {args.repeat} runs each, "
        f"interleaved; median (min–max) of the runs; {elapsed:.0f} s)\n"
    )
    print(f"TaskManager pod: {tm}.\n")
    print(f"CPU per review at concurrency {c}, ms (flinkmem: webhook + controller processes, from /proc):\n")
    print(
        "| review | flinkmem webhook | flinkmem controller | flinkmem total | floor (Go no-op) | × floor "
        "| Python no-op | API server + etcd (flinkmem runs) | load generator | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in review_kinds:
        runs = samples[("flinkmem", kind.name, c)]
        floor_runs = samples[("floor (Go no-op)", kind.name, c)]
        py_runs = samples[("Python no-op", kind.name, c)]
        total = [s.server_ms() for s in runs]
        floor_total = [s.server_ms() for s in floor_runs]
        goal = POD_CPU_TARGET_MS if kind.pod else FD_CPU_TARGET_MS
        verdict = _verdict(_median(total) <= goal)
        if kind.name == "TaskManager pod" and not tm.startswith("sized"):
            verdict = "not sized yet"
        print(
            f"| {kind.name} | {_spread([s.cpu_ms['flinkmem webhook'] for s in runs], 3)} "
            f"| {_spread([s.cpu_ms['flinkmem controller'] for s in runs], 3)} | {_spread(total, 3)} "
            f"| {_spread(floor_total, 3)} | {_median(total) / _median(floor_total):.1f}× "
            f"| {_spread([s.server_ms() for s in py_runs], 3)} "
            f"| {_spread([s.cpu_ms['API server + etcd'] for s in runs], 3)} "
            f"| {_spread([s.cpu_ms['load generator'] for s in runs], 3)} | ≤ {goal} ms: {verdict} |"
        )
    where = "nothing pinned" if args.no_pin else "the servers pinned to one core"
    print(f"\nThroughput (reviews/s) and latency (ms) by concurrency; {where}:\n")
    print("| review | concurrency | " + " | ".join(f"{t.name}: req/s, p50, p99" for t in targets) + " |")
    print("|---|---|" + "---|" * len(targets))
    for kind in review_kinds:
        for concurrency in CONCURRENCY:
            cells = []
            for target in targets:
                runs = samples[(target.name, kind.name, concurrency)]
                cells.append(
                    f"{_rate_spread([s.load.rate for s in runs])}, {_median([s.load.p50_ms for s in runs]):.2f}, "
                    f"{_spread([s.load.p99_ms for s in runs])}"
                )
            print(f"| {kind.name} | {concurrency} | " + " | ".join(cells) + " |")
    print("\nCPU per review (ms, server processes) by concurrency, flinkmem / floor:\n")
    print("| review | " + " | ".join(f"c={n}" for n in CONCURRENCY) + " |")
    print("|---|" + "---|" * len(CONCURRENCY))
    for kind in review_kinds:
        cells = []
        for concurrency in CONCURRENCY:
            ours = _median([s.server_ms() for s in samples[("flinkmem", kind.name, concurrency)]])
            base = _median([s.server_ms() for s in samples[("floor (Go no-op)", kind.name, concurrency)]])
            cells.append(f"{ours:.3f} / {base:.3f} ({ours / base:.1f}×)")
        print(f"| {kind.name} | " + " | ".join(cells) + " |")
    refused = samples[("flinkmem", "FlinkDeployment, refused", c)]
    rate, p99 = _median([s.load.rate for s in refused]), _median([s.load.p99_ms for s in refused])
    print(
        f"\nTarget: ≥ {REFUSED_RATE_TARGET:,} refused FlinkDeployments/s at concurrency {c} with p99 < "
        f"{REFUSED_P99_TARGET_MS:g} ms (load generator on the same machine): {rate:,.0f}/s, p99 {p99:.2f} ms: "
        f"{_verdict(rate >= REFUSED_RATE_TARGET and p99 < REFUSED_P99_TARGET_MS)}"
    )


CPU_COMPONENTS = (
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "no-op webhook",
    "flinkmem webhook",
    "flinkmem controller",
    "load generator",
)


def through_api_server(
    cluster: controlplane.Cluster,
    layout: controlplane.Layout,
    loadgen: Path,
    creates: int,
    label: str,
    servers: dict[str, Callable[[], set[int]]],
) -> tuple[dict[str, gotools.LoadResult], dict[str, dict[str, float]]]:
    """Latencies per phase, and CPU milliseconds per create by process in each concurrency-50 phase."""
    tls = plane.admin_tls(layout)
    namespace = f"bench-{label}-{os.getpid()}"
    plane.create_namespace(cluster, namespace)
    fd_url = f"{tls.server}/apis/flink.apache.org/v1beta1/namespaces/{namespace}/flinkdeployments"
    pod_url = f"{tls.server}/api/v1/namespaces/{namespace}/pods"
    results: dict[str, gotools.LoadResult] = {}
    cpu: dict[str, dict[str, float]] = {}
    bodies = {
        "FlinkDeployment": (fd_url, json.dumps(objects.flinkdeployment("fd-{{N}}", namespace)).encode()),
        "JobManager pod": (pod_url, json.dumps(objects.jobmanager_pod("jm-{{N}}", "fd-{{N}}", namespace)).encode()),
    }

    def load(kind: str, **options: float) -> gotools.LoadResult:
        url, body = bodies[kind]
        return gotools.run_load(
            loadgen,
            url,
            body,
            expect=201,
            ca=tls.ca,
            client_cert=(tls.cert, tls.key),
            **options,  # type: ignore[arg-type]
        )

    # Warm-up, then the steady open-loop rate, then the saturating closed loop, which leaves a
    # controller backlog behind it; so the order is fixed and the kinds run one after the other.
    for kind in bodies:
        load(kind, concurrency=50, count=100, start=creates)
        time.sleep(SETTLE_SECONDS)  # the controller's backlog from the warm-up is not measured
        results[f"{kind} @{PACED_RATE}/s"] = load(
            kind, concurrency=1, count=PACED_TOTAL, start=creates + 100, rate=PACED_RATE
        )
        groups = {name: pids for name, pids in plane.control_plane_pids(layout).items()}
        groups |= {name: get() for name, get in servers.items()}
        before = {name: procstat.cpu_seconds(pids) for name, pids in groups.items()}
        result = results[kind] = load(kind, concurrency=50, count=creates)
        after = {name: procstat.cpu_seconds(pids) for name, pids in groups.items()}
        cpu[kind] = {name: (after[name] - before[name]) * 1000 / creates for name in groups}
        cpu[kind]["load generator"] = result.cpu_seconds * 1000 / creates
        time.sleep(SETTLE_SECONDS)  # let the controller catch up before the next kind
    plane.delete_namespace(cluster, namespace)
    return results, cpu


def api_phase(
    args: argparse.Namespace,
    cluster: controlplane.Cluster,
    layout: controlplane.Layout,
    identity: controlplane.Cluster,
    loadgen: Path,
    noop_binary: Path,
    pinned: list[str],
) -> None:
    started = time.monotonic()
    baseline, baseline_cpu = through_api_server(cluster, layout, loadgen, args.creates, "baseline", {})
    noop_certs = cluster.scratch_dir / "go-noop-certs"
    with floor.go_noop(noop_binary, noop_certs, pinned) as go, floor.registered(cluster, go):
        time.sleep(2)  # the API server picks up new webhook configurations within a second
        noop, noop_cpu = through_api_server(
            cluster, layout, loadgen, args.creates, "noop", {"no-op webhook": lambda: {go.pid}}
        )
    as_flinkmem = ["--service-account", FLINKMEM_USER]
    with running_flinkmem(identity.kubeconfig, cluster.scratch_dir / "op", as_flinkmem, command_prefix=pinned) as op:
        pid = op.process.pid
        servers = {
            "flinkmem webhook": lambda: {pid},
            "flinkmem controller": lambda: procstat.process_tree(pid) - {pid},
        }
        measured, measured_cpu = through_api_server(cluster, layout, loadgen, args.creates, "flinkmem", servers)
    print(
        f"\n## Through kube-apiserver ({time.monotonic() - started:.0f} s): {PACED_TOTAL} creates per kind at a "
        f"steady {PACED_RATE}/s (open loop), then {args.creates} at concurrency 50 (closed loop); the no-op is the "
        "Go floor registered with flinkmem's rules\n"
    )
    print(
        "| object | p50 without | p50 no-op | p50 flinkmem | p99 without | p99 no-op | p99 flinkmem "
        "| added p99, no-op | added p99, flinkmem | flinkmem − no-op p99 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for phase, ours in measured.items():
        runs = (baseline[phase], noop[phase], ours)
        p50 = [r.p50_ms for r in runs]
        p99 = [r.p99_ms for r in runs]
        print(
            f"| {phase} | "
            + " | ".join(f"{v:.1f} ms" for v in (*p50, *p99))
            + f" | {p99[1] - p99[0]:+.1f} ms | {p99[2] - p99[0]:+.1f} ms | {p99[2] - p99[1]:+.1f} ms |"
        )
    print("\nCPU per create at concurrency 50 (ms, all cores together), without / no-op / flinkmem:\n")
    print("| object | " + " | ".join(CPU_COMPONENTS) + " | total |")
    print("|---|" + "---|" * (len(CPU_COMPONENTS) + 1))
    for kind, ours_cpu in measured_cpu.items():
        cpu_runs = (baseline_cpu[kind], noop_cpu[kind], ours_cpu)
        cells = [" / ".join(f"{run[name]:.2f}" if name in run else "–" for run in cpu_runs) for name in CPU_COMPONENTS]
        totals = " / ".join(f"{sum(run.values()):.2f}" for run in cpu_runs)
        print(f"| {kind} | " + " | ".join(cells) + f" | {totals} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="measured direct reviews per run")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured direct reviews before each run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each direct measurement")
    parser.add_argument("--creates", type=int, default=500, help="creates at concurrency 50 per kind")
    parser.add_argument("--skip-api-server", action="store_true", help="direct reviews only")
    parser.add_argument("--skip-direct", action="store_true", help="through the API server only")
    parser.add_argument("--no-pin", action="store_true", help="leave the servers and the load generator unpinned")
    args = parser.parse_args()
    os.environ.pop("KUBECONFIG", None)  # always a private control plane, never the developer's cluster
    loadgen, noop_binary = gotools.build("loadgen"), gotools.build("noop")
    scratch = Path(tempfile.mkdtemp(prefix="flinkmem-bench-"))
    layout = controlplane.Layout(scratch / "cluster")
    started = time.monotonic()
    with controlplane.session_cluster(scratch, layout) as cluster:
        # flinkmem runs as its own user, as in a real install, so that the webhook configuration's
        # matchConditions spare it its own annotation writes (the load generator stays the admin).
        identity = cluster.user(FLINKMEM_USER, ["system:masters"])
        cores = sorted(os.sched_getaffinity(0))
        server_core, client_core = (cores[0], cores[-1]) if len(cores) > 1 else (cores[0], cores[0])
        pinned = [] if args.no_pin else ["taskset", "-c", str(server_core)]
        load_prefix = [] if args.no_pin else ["taskset", "-c", str(client_core)]
        where = (
            "nothing pinned"
            if args.no_pin
            else f"servers pinned to core {server_core}, the load generator to core {client_core}"
        )
        print(f"# Webhook benchmark: {os.cpu_count()} cores shared with other work; {where}")
        plane.create_namespace(cluster, NAMESPACE)
        as_flinkmem = ["--service-account", FLINKMEM_USER]
        # Direct reviews first, on a settled control plane: a namespace of a thousand objects being
        # deleted in the background would otherwise be measured as webhook latency.
        # The bundled CRD, as `flinkmem serve --install-crd` installs it, for the phases without flinkmem.
        cluster.kubectl("apply", "-f", "-", input=json.dumps(bundled_crd()))
        cluster.kubectl("wait", "--for=condition=Established", "crd/flinkdeployments.flink.apache.org")
        if not args.skip_direct:
            with running_flinkmem(identity.kubeconfig, scratch / "direct", as_flinkmem, command_prefix=pinned) as op:
                direct_phase(args, loadgen, noop_binary, op, cluster, layout, pinned, load_prefix)
        if not args.skip_api_server:
            api_phase(args, cluster, layout, identity, loadgen, noop_binary, pinned)
    print(f"\nWall time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
