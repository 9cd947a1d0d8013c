"""Where flinkmem's CPU goes, per review kind and per unrelated pod event: py-spy (from PyPI, installed
into the cache on first use) samples the running `flinkmem serve` processes without pausing them
(--nonblocking) while the Go load generator sends one kind of review at concurrency 8; the samples are
sorted into the parts of the path (TLS, aiohttp, JSON, kopf's admission machinery, flinkmem's own
decision, the owner GET, logging, ...) and each part's share is turned into milliseconds with the CPU
per review measured from /proc in the same run. Prints markdown; asserts nothing.

    .venv/bin/python benchmarks/profile_reviews.py [--seconds 15] [--pods 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import gotools, objects, plane, procstat
from benchmarks.webhook import FLINKMEM_USER, NAMESPACE, OWNER, Kind, kinds
from localplane import controlplane
from localplane.serve import running_flinkmem

RATE = 250  # samples per second
Rule = tuple[str, Callable[[list[str]], bool]]


def pyspy() -> Path:
    target = Path(os.environ.get("FLINKMEM_CACHE", Path.home() / ".cache" / "flinkmem")) / "bench" / "pyspy"
    binary = target / "bin" / "py-spy"
    if not binary.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), "py-spy"], check=True
        )
    return binary


def _any(stack: list[str], *needles: str) -> bool:
    return any(all(n in frame for n in needles) for frame in stack)


def _caller_of(stack: list[str], callee: str, caller: str) -> bool:
    """A frame containing `callee` directly below one containing `caller`."""
    return any(caller in stack[i] and callee in stack[i + 1] for i in range(len(stack) - 1))


# The layers below the runtime: the engine, the sources and the decisions (see docs/development.md).
_DECISION_MODULES = ("flinkmem/engine/", "flinkmem/sources/", "flinkmem/decisions/")
# Innermost frames where a thread waits rather than runs: py-spy --nonblocking cannot always tell.
_IDLE = ("select (selectors.py", "_worker (concurrent/futures/thread.py", "wait (threading.py")


def _idle(stack: list[str]) -> bool:
    return bool(stack) and any(marker in stack[-1] for marker in _IDLE)


def _decision(stack: list[str]) -> bool:
    return any(module in frame for frame in stack for module in _DECISION_MODULES)


WEBHOOK_RULES: list[Rule] = [
    ("(idle: waiting for events; left out of the shares)", _idle),
    (
        "owner GET, client side (cluster.py: aiohttp client, TLS, JSON)",
        lambda s: _any(s, "flinkmem/runtime/cluster.py"),
    ),
    ("kopf patch: deep copy of the body", lambda s: _any(s, "as_json_patch") and _any(s, "(copy.py")),
    ("kopf patch: JSON-patch diff (jsonpatch)", lambda s: _any(s, "as_json_patch") and _any(s, "jsonpatch")),
    ("kopf patch: applying our plan (podplan.apply_plan)", lambda s: _any(s, "as_json_patch") and _decision(s)),
    ("kopf patch: other", lambda s: _any(s, "as_json_patch")),
    ("logging", lambda s: _any(s, "logging/__init__.py")),
    ("metrics (prometheus_client)", lambda s: _any(s, "prometheus_client")),
    ("flinkmem: decision (validation, derivation, admission, pod plan)", _decision),
    ("flinkmem: review checks (check_review)", lambda s: _any(s, "check_review")),
    (
        "JSON decode of the review",
        lambda s: _caller_of(s, "loads (json/__init__.py", "handle_review (flinkmem/runtime/webserver.py"),
    ),
    ("JSON encode of the answer", lambda s: _any(s, "json_response (aiohttp") or _any(s, "build_response", "dumps")),
    ("kopf: response building (build_response)", lambda s: _any(s, "build_response (kopf")),
    ("flinkmem admission service and transports", lambda s: _any(s, "flinkmem/runtime/admission/")),
    ("kopf: handler dispatch (execution, lifecycles, progression)", lambda s: _any(s, "kopf/_core/actions/")),
    (
        "kopf: admission request wrapping (bodies, diff, cause, memo, resource lookup)",
        lambda s: _any(s, "serve_admission_request (kopf"),
    ),
    ("kopf: other", lambda s: _any(s, "kopf/")),
    ("flinkmem webserver (HTTP glue)", lambda s: _any(s, "flinkmem/runtime/webserver.py")),
    ("TLS (ssl, asyncio sslproto)", lambda s: _any(s, "ssl.py") or _any(s, "sslproto.py")),
    ("aiohttp server (HTTP parsing, request and response objects)", lambda s: _any(s, "aiohttp/")),
    ("asyncio event loop", lambda s: _any(s, "asyncio/")),
    ("other", lambda s: True),
]

CONTROLLER_RULES: list[Rule] = [
    ("(idle: waiting for events; left out of the shares)", _idle),
    ("logging", lambda s: _any(s, "logging/__init__.py")),
    ("flinkmem controller and decisions", lambda s: _any(s, "flinkmem/runtime/controller.py") or _decision(s)),
    (
        "kopf: deep copy of every event body (diff-base essence for change detection)",
        lambda s: _any(s, "diffbase.py") and _any(s, "(copy.py"),
    ),
    ("kopf: other deep copies", lambda s: _any(s, "kopf/") and _any(s, "(copy.py")),
    ("JSON decoding of watch events", lambda s: _any(s, "watching.py") and _any(s, "json/")),
    ("kopf: handler selection and filters (registries, label matching)", lambda s: _any(s, "kopf/_core/intents/")),
    (
        "kopf: cause detection, body views, per-event loggers and state",
        lambda s: _any(s, "kopf/_core/reactor/processing.py"),
    ),
    ("kopf: per-object queues and workers (multiplexing)", lambda s: _any(s, "kopf/_core/reactor/queueing.py")),
    ("kopf: watch stream (reading events)", lambda s: _any(s, "kopf/_cogs/clients/watching.py")),
    ("kopf: other", lambda s: _any(s, "kopf/")),
    ("TLS (ssl, asyncio sslproto)", lambda s: _any(s, "ssl.py") or _any(s, "sslproto.py")),
    ("aiohttp client", lambda s: _any(s, "aiohttp/")),
    ("asyncio event loop", lambda s: _any(s, "asyncio/")),
    ("garbage collection and other", lambda s: True),
]


def classify(raw: Path, rules: list[Rule]) -> tuple[Counter[str], Counter[str]]:
    """Samples per category, and per innermost frame (the hottest functions), from py-spy's raw output."""
    categories: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        stack = [frame for frame in stack_text.split(";") if not frame.startswith(("process ", "thread "))]
        count = int(count_text)
        category = next(name for name, rule in rules if rule(stack))
        categories[category] += count
        leaves[stack[-1] if stack else "?"] += count
    return categories, leaves


def record(binary: Path, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    # --gil: only samples that hold the GIL, i.e. running Python code. Time in system calls (socket
    # sends, where the kernel also delivers loopback traffic) is read from /proc as system time, and a
    # thread preempted inside a system call is not counted as working there.
    command = [str(binary), "record", "--pid", str(pid), "--nonblocking", "--gil", "--rate", str(RATE)]
    command += ["--format", "raw", "--duration", str(int(seconds)), "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(
    title: str, user_ms: float, system_ms: float, unit: str, categories: Counter[str], leaves: Counter[str]
) -> None:
    """The user CPU divided by the samples' shares; the system CPU on a line of its own."""
    idle = sum(count for name, count in categories.items() if name.startswith("(idle"))
    total = sum(categories.values()) - idle
    print(
        f"\n### {title}: {user_ms + system_ms:.3f} ms CPU per {unit} (user {user_ms:.3f}, system {system_ms:.3f}; "
        f"{total:,} samples holding the GIL)\n"
    )
    print(f"| part | share of user CPU | ms per {unit} |\n|---|---|---|")
    for name, count in categories.most_common():
        if not name.startswith("(idle"):
            print(f"| {name} | {count / total * 100:.1f}% | {count / total * user_ms:.3f} |")
    print(f"| kernel: system CPU (socket sends and receives, loopback delivery, epoll) | – | {system_ms:.3f} |")
    print("\nHottest functions (innermost frame):\n")
    for frame, count in leaves.most_common(14):
        if not _idle([frame]):
            print(f"- {count / total * 100:.1f}% `{frame}`")


def profile_kind(
    pyspy_binary: Path, loadgen: Path, url: str, ca: Path, kind: Kind, pid: int, seconds: float, raw: Path
) -> dict[str, float]:
    """CPU per review of `pid` under this kind at concurrency 8, with py-spy's samples written to `raw`."""
    calibration = gotools.run_load(loadgen, url, kind.body, concurrency=8, count=300, allowed=kind.allowed, ca=ca)
    count = max(500, int(calibration.rate * seconds))
    recorder = record(pyspy_binary, pid, seconds + 60, raw)
    time.sleep(1.0)  # py-spy attaches
    before = procstat.cpu_split({pid})
    gotools.run_load(loadgen, url, kind.body, concurrency=8, count=count, allowed=kind.allowed, ca=ca)
    cpu_ms = _per_unit(before, procstat.cpu_split({pid}), count)
    recorder.send_signal(signal.SIGINT)  # py-spy writes what it has sampled and exits
    recorder.wait(30)
    if not raw.exists():
        raise RuntimeError("py-spy wrote no samples")
    return cpu_ms


def _per_unit(before: tuple[float, float], after: tuple[float, float], units: int) -> dict[str, float]:
    return {"user": (after[0] - before[0]) * 1000 / units, "system": (after[1] - before[1]) * 1000 / units}


def _rss(pid: int) -> int:
    return procstat.memory({pid}).rss


def report_saved(directory: Path) -> None:
    """Reports the samples a run saved (`--samples DIR`), so that the rules can change without a new run."""
    figures = json.loads((directory / "cpu.json").read_text())
    print("## Webhook process, by review kind (concurrency 8; all CPU of the webhook process)")
    for name, cpu in figures.items():
        if name == "Unrelated pod":
            continue
        samples = classify(directory / f"{_slug(name)}.txt", WEBHOOK_RULES)
        report(name, cpu["user"], cpu["system"], "review", *samples)
    if "Unrelated pod" in figures:
        print("\n## Controller process, unrelated pods created in a watched namespace")
        cpu = figures["Unrelated pod"]
        samples = classify(directory / "unrelated-pod.txt", CONTROLLER_RULES)
        report("Unrelated pod", cpu["user"], cpu["system"], "pod created", *samples)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="load per review kind")
    parser.add_argument("--pods", type=int, default=5000, help="unrelated pods for the controller profile")
    parser.add_argument("--samples", type=Path, help="keep py-spy's samples here (default: a temporary directory)")
    parser.add_argument("--report", type=Path, help="only report the samples an earlier run kept in this directory")
    args = parser.parse_args()
    if args.report:
        report_saved(args.report)
        return 0
    os.environ.pop("KUBECONFIG", None)
    binary, loadgen = pyspy(), gotools.build("loadgen")
    scratch = Path(tempfile.mkdtemp(prefix="flinkmem-profile-"))
    samples: Path = args.samples or scratch / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict[str, float]] = {}
    layout = controlplane.Layout(scratch / "cluster")
    with controlplane.session_cluster(scratch, layout) as cluster:
        identity = cluster.user(FLINKMEM_USER, ["system:masters"])
        plane.create_namespace(cluster, NAMESPACE)
        args_serve = ["--service-account", FLINKMEM_USER]
        with running_flinkmem(identity.kubeconfig, scratch / "op", args_serve) as op:
            cluster.kubectl("apply", "-f", "-", input=json.dumps(objects.flinkdeployment(OWNER, NAMESPACE)))
            mutating = json.loads(cluster.kubectl("get", "mutatingwebhookconfiguration/flinkmem", "-o", "json").stdout)
            for kind in kinds(mutating):
                url = op.webhook_url + (kind.path or "/mutate-flink-pod")
                raw = samples / f"{_slug(kind.name)}.txt"
                figures[kind.name] = profile_kind(
                    binary, loadgen, url, op.ca_file, kind, op.process.pid, args.seconds, raw
                )
            children = procstat.process_tree(op.process.pid) - {op.process.pid}
            controller = max(children, key=_rss)  # the spawned controller, not multiprocessing's resource tracker
            plane.create_namespace(cluster, "apps")
            tls = plane.admin_tls(layout)
            recorder = record(binary, controller, 600, samples / "unrelated-pod.txt")
            time.sleep(1.0)
            before = procstat.cpu_split({controller})
            gotools.run_load(
                loadgen,
                f"{tls.server}/api/v1/namespaces/apps/pods",
                json.dumps(objects.unrelated_pod("web-{{N}}", "apps")).encode(),
                concurrency=32,
                count=args.pods,
                expect=201,
                ca=tls.ca,
                client_cert=(tls.cert, tls.key),
            )
            time.sleep(5)  # the controller drains its watch stream
            figures["Unrelated pod"] = _per_unit(before, procstat.cpu_split({controller}), args.pods)
            recorder.send_signal(signal.SIGINT)
            recorder.wait(30)
    (samples / "cpu.json").write_text(json.dumps(figures, indent=1))
    print(f"py-spy samples kept in {samples}", file=sys.stderr)
    report_saved(samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
