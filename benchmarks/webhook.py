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
(b) What a create costs the cluster, through the real kube-apiserver: FlinkDeployments, JobManager
    pods and TaskManager pods created at a steady 100/s, then at concurrency 50, with no webhook (the
    baseline), with the Go no-op registered under flinkmem's rules, and with flinkmem, in rounds
    (`--api-repeat`). Per create: the review's CPU (from (a)), all of flinkmem's CPU (webhook process
    and controller, until both are quiet again after the load: what the watches and the controller
    do because of the creates is counted), the API server's and etcd's CPU over the no-op's, and the
    API writes besides the create itself (from the API server's own request counters); p50/p99; and
    the concurrency-50 TaskManager phase as a burst of pods against the no-op's. Targets of issue 22.

    .venv/bin/python benchmarks/webhook.py [--requests N] [--repeat N] [--creates N] [--api-repeat N]
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
) -> dict[str, float]:
    """Prints the direct reviews' figures; returns flinkmem's CPU per review at the headline concurrency by
    the kinds of the API server phase."""
    cluster.kubectl("apply", "-f", "-", input=json.dumps(objects.flinkdeployment(OWNER, NAMESPACE)))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(objects.flink_configmap(OWNER, NAMESPACE)))
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
    names = {
        "FlinkDeployment": "FlinkDeployment, valid",
        "JobManager pod": "JobManager pod",
        "TaskManager pod": "TaskManager pod",
    }
    return {
        kind: _median([s.server_ms() for s in samples[("flinkmem", name, HEADLINE_CONCURRENCY)]])
        for kind, name in names.items()
    }


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
TM_CLUSTER = "tm-cluster"
SETUPS = ("no webhook", "no-op", "flinkmem")
QUIET_POLL = 0.5  # seconds between looks at whether flinkmem has finished what a phase left it
QUIET_CPU = 0.02  # of one core over a poll: below this, and no write meanwhile, flinkmem is done
WRITES_POLL = 5.0  # seconds between reads of the API server's write counters while waiting
IDLE_SECONDS = 5.0  # how long the processes' CPU at rest is read before each measured phase
QUIET_LIMIT = 150.0  # a controller writing at 10 objects/s takes 100 s after 1,000 creates
# Issue 22's targets, printed beside the figures.
CREATE_CPU_TARGET_MS = 0.6
FD_WRITES_TARGET = 1.0
POD_WRITES_TARGET = 0.0
PACED_P99_TARGET_MS = 5.0
C50_P99_TARGET_MS = 10.0
BURST_TARGET = 1.25


@dataclass(frozen=True)
class Phase:
    """One measured load through the API server: latencies, CPU per create by process, writes per create.

    CPU and writes are read from before the load until flinkmem has gone quiet after it (its watches and
    controller finish after the last create is answered), so they are the whole bill of the creates."""

    load: gotools.LoadResult
    cpu_ms: dict[str, float]
    writes: float  # API writes per create besides the create itself
    written: dict[str, int]  # all the writes counted, by verb and resource (the creates included)


def _wait_quiet(tls: plane.AdminTLS, servers: dict[str, Callable[[], set[int]]]) -> None:
    """Until flinkmem's processes use next to no CPU over one poll and nothing was written over WRITES_POLL.

    The writes are read from the API server's /metrics, and each read costs the API server CPU that
    this phase would count as flinkmem's; so they are read at most once per WRITES_POLL (a phase of
    paced Events lasts 100 s), not at every poll."""
    deadline = time.monotonic() + QUIET_LIMIT
    pids: set[int] = set().union(*(get() for get in servers.values())) if servers else set()
    cpu = procstat.cpu_seconds(pids)
    writes, writes_read = plane.api_writes(tls).total(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(QUIET_POLL)
        now_cpu = procstat.cpu_seconds(pids)
        busy, cpu = now_cpu - cpu >= QUIET_CPU * QUIET_POLL, now_cpu
        if busy or time.monotonic() - writes_read < WRITES_POLL:
            continue
        now_writes = plane.api_writes(tls).total()
        if now_writes == writes:
            return
        writes, writes_read = now_writes, time.monotonic()


def through_api_server(
    cluster: controlplane.Cluster,
    layout: controlplane.Layout,
    loadgen: Path,
    creates: int,
    label: str,
    servers: dict[str, Callable[[], set[int]]],
) -> dict[str, Phase]:
    """Per kind, a steady 100/s and a closed loop at concurrency 50, each with its whole bill."""
    tls = plane.admin_tls(layout)
    namespace = f"bench-{label}-{os.getpid()}"
    plane.create_namespace(cluster, namespace)
    fd_url = f"{tls.server}/apis/flink.apache.org/v1beta1/namespaces/{namespace}/flinkdeployments"
    pod_url = f"{tls.server}/api/v1/namespaces/{namespace}/pods"
    phases: dict[str, Phase] = {}
    bodies = {
        "FlinkDeployment": (fd_url, json.dumps(objects.flinkdeployment("fd-{{N}}", namespace)).encode()),
        "JobManager pod": (pod_url, json.dumps(objects.jobmanager_pod("jm-{{N}}", "fd-{{N}}", namespace)).encode()),
        # The TaskManagers of one cluster (a burst is one job's), whose ConfigMap Flink wrote before them.
        "TaskManager pod": (pod_url, json.dumps(objects.taskmanager_pod("tm-{{N}}", TM_CLUSTER, namespace)).encode()),
    }
    for obj in (objects.flinkdeployment(TM_CLUSTER, namespace), objects.flink_configmap(TM_CLUSTER, namespace)):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))

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

    def measured(kind: str, **options: float) -> Phase:
        groups = {name: pids for name, pids in plane.control_plane_pids(layout).items()}
        groups |= {name: get() for name, get in servers.items()}
        # What each process spends at rest (probes, leases, keep-alives) is not the creates': measured
        # just before, it is taken off for the whole phase (which lasts until flinkmem is quiet).
        rest = {name: procstat.cpu_seconds(pids) for name, pids in groups.items()}
        time.sleep(IDLE_SECONDS)
        before = {name: procstat.cpu_seconds(pids) for name, pids in groups.items()}
        idle = {name: (before[name] - rest[name]) / IDLE_SECONDS for name in groups}
        started = time.monotonic()
        writes = plane.api_writes(tls)
        result = load(kind, **options)
        _wait_quiet(tls, servers)
        after = {name: procstat.cpu_seconds(pids) for name, pids in groups.items()}
        elapsed = time.monotonic() - started
        n = result.requests
        cpu = {name: (after[name] - before[name] - idle[name] * elapsed) * 1000 / n for name in groups}
        cpu["load generator"] = result.cpu_seconds * 1000 / n
        written = plane.api_writes(tls) - writes
        return Phase(result, cpu, (written.total() - n) / n, dict(written))

    # Warm-up, then the steady open-loop rate, then the saturating closed loop; each measured phase
    # lasts until flinkmem is quiet again. The FlinkDeployments come first: the pods name them.
    for kind in bodies:
        load(kind, concurrency=50, count=100, start=creates)
        _wait_quiet(tls, servers)
        phases[f"{kind} @{PACED_RATE}/s"] = measured(
            kind, concurrency=1, count=PACED_TOTAL, start=creates + 100, rate=PACED_RATE
        )
        phases[f"{kind} @c50"] = measured(kind, concurrency=50, count=creates)
    plane.delete_namespace(cluster, namespace)
    return phases


def _flinkmem_ms(phase: Phase) -> float:
    return phase.cpu_ms.get("flinkmem webhook", 0.0) + phase.cpu_ms.get("flinkmem controller", 0.0)


def _api_ms(phase: Phase) -> float:
    return phase.cpu_ms["kube-apiserver"] + phase.cpu_ms["etcd"]


def _flinkmem_groups(pid: int) -> dict[str, Callable[[], set[int]]]:
    """flinkmem's processes: the webhook process `pid` and its controller child."""
    return {
        "flinkmem webhook": lambda: {pid},
        "flinkmem controller": lambda: procstat.process_tree(pid) - {pid},
    }


def api_phase(
    args: argparse.Namespace,
    cluster: controlplane.Cluster,
    layout: controlplane.Layout,
    identity: controlplane.Cluster,
    loadgen: Path,
    noop_binary: Path,
    pinned: list[str],
    review_ms: dict[str, float],
) -> None:
    started = time.monotonic()
    runs: dict[str, list[dict[str, Phase]]] = {setup: [] for setup in SETUPS}
    as_flinkmem = ["--service-account", FLINKMEM_USER]
    for repeat in range(args.api_repeat):
        tag = f"r{repeat}"
        runs["no webhook"].append(through_api_server(cluster, layout, loadgen, args.creates, f"baseline-{tag}", {}))
        noop_certs = cluster.scratch_dir / "go-noop-certs"
        with floor.go_noop(noop_binary, noop_certs, pinned) as go, floor.registered(cluster, go):
            time.sleep(2)  # the API server picks up new webhook configurations within a second
            runs["no-op"].append(
                through_api_server(
                    cluster, layout, loadgen, args.creates, f"noop-{tag}", {"no-op webhook": lambda: {go.pid}}
                )
            )
        scratch = cluster.scratch_dir / f"op-{tag}"
        with running_flinkmem(identity.kubeconfig, scratch, as_flinkmem, command_prefix=pinned) as op:
            servers = _flinkmem_groups(op.process.pid)
            runs["flinkmem"].append(
                through_api_server(cluster, layout, loadgen, args.creates, f"flinkmem-{tag}", servers)
            )
        print(f"through the API server: round {repeat + 1} of {args.api_repeat} done", file=sys.stderr)
    report_api(args, runs, review_ms, time.monotonic() - started)


def report_api(
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Phase]]],
    review_ms: dict[str, float],
    elapsed: float,
) -> None:
    n = args.api_repeat

    def values(setup: str, phase: str, get: Callable[[Phase], float]) -> list[float]:
        return [get(run[phase]) for run in runs[setup]]

    def med(setup: str, phase: str, get: Callable[[Phase], float]) -> float:
        return _median(values(setup, phase, get))

    phases = list(runs["flinkmem"][0])
    print(
        f"\n## Through kube-apiserver ({elapsed:.0f} s; {n} rounds of no webhook, no-op, flinkmem; median (min–max) "
        f"of the rounds): {PACED_TOTAL} creates per kind at a steady {PACED_RATE}/s (open loop), then {args.creates} "
        "at concurrency 50 (closed loop); the no-op is the Go floor registered with flinkmem's rules. CPU and "
        f"writes run from the first create until flinkmem is quiet again; CPU at rest ({IDLE_SECONDS:g} s just "
        "before) is taken off.\n"
    )
    print("What a create costs, per create:\n")
    print(
        "| create | review CPU (direct, c=8) | all of flinkmem CPU: webhook + controller | API server + etcd CPU, "
        "over no-op | API writes besides the create: no webhook / no-op / flinkmem | target |"
    )
    print("|---|---|---|---|---|---|")
    for phase in phases:
        kind = phase.split(" @")[0]
        ours = values("flinkmem", phase, _flinkmem_ms)
        webhook = med("flinkmem", phase, lambda p: p.cpu_ms["flinkmem webhook"])
        controller = med("flinkmem", phase, lambda p: p.cpu_ms["flinkmem controller"])
        extra = [
            a - b for a, b in zip(values("flinkmem", phase, _api_ms), values("no-op", phase, _api_ms), strict=True)
        ]
        writes = [med(setup, phase, lambda p: p.writes) for setup in SETUPS]
        goal_writes = FD_WRITES_TARGET if kind == "FlinkDeployment" else POD_WRITES_TARGET
        review = review_ms.get(kind)
        ok = _median(ours) <= CREATE_CPU_TARGET_MS and writes[2] <= goal_writes + 0.05
        print(
            f"| {phase} | {f'{review:.2f} ms' if review is not None else '–'} "
            f"| {_spread(ours)} ms: {webhook:.2f} + {controller:.2f} | {_spread(extra)} ms "
            f"| {' / '.join(f'{w:.2f}' for w in writes)} "
            f"| ≤ {CREATE_CPU_TARGET_MS} ms, ≤ {goal_writes:g} write: {_verdict(ok)} |"
        )
    print("\nLatency through the API server (ms):\n")
    print(
        "| create | p50 without / no-op / flinkmem | p99 without | p99 no-op | p99 flinkmem | flinkmem − no-op p99 "
        "| target |"
    )
    print("|---|---|---|---|---|---|---|")
    for phase in phases:
        p50 = " / ".join(f"{med(setup, phase, lambda p: p.load.p50_ms):.1f}" for setup in SETUPS)
        p99 = {setup: values(setup, phase, lambda p: p.load.p99_ms) for setup in SETUPS}
        added = [a - b for a, b in zip(p99["flinkmem"], p99["no-op"], strict=True)]
        goal = C50_P99_TARGET_MS if phase.endswith("@c50") else PACED_P99_TARGET_MS
        verdict = _verdict(_median(added) <= goal)
        print(
            f"| {phase} | {p50} | {_spread(p99['no webhook'], 1)} | {_spread(p99['no-op'], 1)} "
            f"| {_spread(p99['flinkmem'], 1)} | {_spread(added, 1)} | ≤ +{goal:g} ms: {verdict} |"
        )
    burst = "TaskManager pod @c50"
    seconds = {setup: values(setup, burst, lambda p: p.load.seconds) for setup in SETUPS}
    ratio = _median(seconds["flinkmem"]) / _median(seconds["no-op"])
    print(
        f"\nA burst of {args.creates} TaskManager pods at concurrency 50: "
        + ", ".join(f"{setup} {_spread(seconds[setup])} s" for setup in SETUPS)
        + f"; flinkmem {ratio:.2f}× the no-op (target ≤ {BURST_TARGET}×: {_verdict(ratio <= BURST_TARGET)})"
    )
    print("\nAPI writes counted in flinkmem's last round (the creates included):\n")
    for phase in phases:
        written = runs["flinkmem"][-1][phase].written
        print(f"- {phase}: " + ", ".join(f"{what} {count}" for what, count in sorted(written.items())))
    print("\nCPU per create by process (ms, all cores together, medians), no webhook / no-op / flinkmem:\n")
    print("| create | " + " | ".join(CPU_COMPONENTS) + " | total |")
    print("|---|" + "---|" * (len(CPU_COMPONENTS) + 1))

    def component(setup: str, phase: str, name: str) -> str:
        if name not in runs[setup][0][phase].cpu_ms:
            return "–"
        return f"{_median([run[phase].cpu_ms[name] for run in runs[setup]]):.2f}"

    for phase in phases:
        cells = [" / ".join(component(setup, phase, name) for setup in SETUPS) for name in CPU_COMPONENTS]
        totals = " / ".join(f"{med(setup, phase, lambda p: sum(p.cpu_ms.values())):.2f}" for setup in SETUPS)
        print(f"| {phase} | " + " | ".join(cells) + f" | {totals} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="measured direct reviews per run")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured direct reviews before each run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each direct measurement")
    parser.add_argument("--creates", type=int, default=500, help="creates at concurrency 50 per kind")
    parser.add_argument("--api-repeat", type=int, default=3, help="rounds of the phases through the API server")
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
        review_ms: dict[str, float] = {}
        if not args.skip_direct:
            with running_flinkmem(identity.kubeconfig, scratch / "direct", as_flinkmem, command_prefix=pinned) as op:
                review_ms = direct_phase(args, loadgen, noop_binary, op, cluster, layout, pinned, load_prefix)
        if not args.skip_api_server:
            api_phase(args, cluster, layout, identity, loadgen, noop_binary, pinned, review_ms)
    print(f"\nWall time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
