"""Webhook latency and throughput: prints figures, asserts nothing.

(a) AdmissionReviews for FlinkDeployments posted straight to `flinkmem serve` over HTTPS (keep-alive
    connections) at concurrency 1, 8 and 32: throughput and p50/p99. The server is pinned to one core
    and the load generator to the other.
(b) FlinkDeployments and JobManager pods created through the real kube-apiserver at concurrency 50,
    first with no webhooks registered (the baseline, measured in the same run), then with a no-op
    webhook that allows everything (`noop_webhook.py`, registered with flinkmem's rules: what calling
    any webhook costs here), then with flinkmem registered: the latency each adds at p50/p99, and
    the CPU time each process spent
    per create during the concurrency-50 phases (read from /proc), which is what the latency of a
    saturated closed loop is made of.

Targets (reported): >= 1,500 validations/s on one core with p99 < 5 ms at concurrency 8; added p99
through the API server < 10 ms.

    .venv/bin/python benchmarks/webhook.py [--requests N] [--creates N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flinkmem.certs import ensure_self_signed
from flinkmem.settings import DEFAULT_RESOURCE
from flinkmem.webhookconfig import mutating_configuration, validating_configuration
from localplane import controlplane
from localplane.serve import RunningOperator, free_port, running_flinkmem

PACED_RATE = 100
PACED_TOTAL = 1000
SETTLE_SECONDS = 10
FLINKMEM_USER = "flinkmem-bench"
CONFIG = {
    "jobmanager.memory.jvm-overhead.fraction": "0.15",
    "jobmanager.memory.enable-jvm-direct-memory-limit": "true",
    "env.java.opts.jobmanager": "-XX:+UseG1GC",
    "taskmanager.numberOfTaskSlots": "4",
}


def flinkdeployment(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"flinkVersion": "v1_20", "flinkConfiguration": CONFIG, "jobManager": {"resource": {"memory": "2g"}}},
    }


def jobmanager_pod(name: str, owner: str, namespace: str) -> dict[str, Any]:
    labels = {"app": owner, "component": "jobmanager", "type": "flink-native-kubernetes"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "flink-main-container", "image": "flink:1.20"}]},
    }


def review(uid: int) -> bytes:
    request = {
        "uid": f"bench-{uid}",
        "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": "FlinkDeployment"},
        "resource": {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"},
        "namespace": "bench",
        "operation": "CREATE",
        "userInfo": {"username": "bench"},
        "object": flinkdeployment(f"fd-{uid}", "bench"),
        "oldObject": None,
        "dryRun": False,
    }
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}).encode()


CPU_COMPONENTS = (
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "no-op webhook",
    "flinkmem webhooks",
    "flinkmem controller",
    "load generator",
)
_CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-controller-manager")


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by each control-plane component, flinkmem and this process.

    `flinkmem serve` is the webhook process; the controller is its child (a spawned interpreter).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    processes: dict[int, tuple[int, list[bytes], float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # from the state field on
        except OSError:
            continue  # exited meanwhile
        processes[int(entry.name)] = (int(fields[1]), argv, (int(fields[11]) + int(fields[12])) / ticks)
    servers = {pid for pid, (_, argv, _) in processes.items() if b"serve" in argv and b"flinkmem" in b" ".join(argv)}
    totals: dict[str, float] = defaultdict(float)
    for pid, (parent, argv, seconds) in processes.items():
        program = os.path.basename(argv[0]).decode(errors="replace") if argv else ""
        if pid == os.getpid():
            totals["load generator"] += seconds
        elif any(arg.endswith(b"noop_webhook.py") for arg in argv):
            totals["no-op webhook"] += seconds
        elif program in _CONTROL_PLANE:
            totals[program] += seconds
        elif pid in servers:
            totals["flinkmem webhooks"] += seconds
        elif parent in servers:
            totals["flinkmem controller"] += seconds
    return totals


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(concurrency: int, total: int, call: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for index in counter:
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def paced(rate: float, total: int, call: Callable[[int], Awaitable[None]]) -> list[float]:
    """Open loop: starts call i at i/rate seconds whatever the earlier ones are doing."""
    latencies: list[float] = []
    start = time.perf_counter()

    async def one(index: int) -> None:
        await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
        began = time.perf_counter()
        await call(index)
        latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one(i) for i in range(total)))
    return latencies


async def direct(operator: RunningOperator, requests: int) -> list[str]:
    context = operator.ssl_context()
    rows = []
    url = f"{operator.webhook_url}/validate-flinkdeployment"
    bodies = [review(i) for i in range(200)]
    for concurrency in (1, 8, 32):
        connector = aiohttp.TCPConnector(limit=concurrency, ssl=context)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def call(index: int, session: aiohttp.ClientSession = session) -> None:
                async with session.post(url, data=bodies[index % len(bodies)]) as response:
                    payload = await response.json()
                    assert payload["response"]["allowed"] is True, payload

            await load(concurrency, min(500, requests), call)  # warm-up
            elapsed, latencies = await load(concurrency, requests, call)
        rows.append(
            f"| direct HTTPS, concurrency {concurrency} | {requests / elapsed:,.0f} req/s | "
            f"{percentile(latencies, 0.5) * 1000:.2f} ms | {percentile(latencies, 0.99) * 1000:.2f} ms |"
        )
    return rows


def _client_ssl(kubeconfig: Path, scratch: Path) -> tuple[str, ssl.SSLContext]:
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    ca = scratch / "ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    cert, key = scratch / "client.crt", scratch / "client.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return str(cluster["server"]), context


async def through_api_server(
    kubeconfig: Path, creates: int, label: str, scratch: Path
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Latencies per phase, and CPU milliseconds per create by process in each concurrency-50 phase."""
    server, context = _client_ssl(kubeconfig, scratch)
    namespace = f"bench-{label}-{os.getpid()}"
    results: dict[str, list[float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50, ssl=context)) as session:
        async with session.post(f"{server}/api/v1/namespaces", json={"metadata": {"name": namespace}}) as r:
            assert r.status == 201, await r.text()
        for _ in range(100):  # pods need the namespace's default ServiceAccount
            async with session.get(f"{server}/api/v1/namespaces/{namespace}/serviceaccounts/default") as r:
                if r.status == 200:
                    break
            await asyncio.sleep(0.1)
        fd_url = f"{server}/apis/flink.apache.org/v1beta1/namespaces/{namespace}/flinkdeployments"
        pod_url = f"{server}/api/v1/namespaces/{namespace}/pods"

        async def create_fd(index: int) -> None:
            async with session.post(fd_url, json=flinkdeployment(f"fd-{index}", namespace)) as r:
                assert r.status == 201, await r.text()

        async def create_pod(index: int) -> None:
            async with session.post(pod_url, json=jobmanager_pod(f"jm-{index}", f"fd-{index}", namespace)) as r:
                assert r.status == 201, await r.text()

        # Warm-up, then the steady open-loop rate, then the saturating closed loop, which leaves a
        # controller backlog behind it; so the order is fixed and the kinds run one after the other.
        for kind, call in (("FlinkDeployment", create_fd), ("JobManager pod", create_pod)):
            await load(50, 100, lambda index, call=call: call(creates + index))  # type: ignore[misc]
            await asyncio.sleep(SETTLE_SECONDS)  # the controller's backlog from the warm-up is not measured
            offset = creates + 100
            results[f"{kind} @{PACED_RATE}/s"] = await paced(
                PACED_RATE,
                PACED_TOTAL,
                lambda index, call=call, offset=offset: call(offset + index),  # type: ignore[misc]
            )
            before = cpu_seconds()
            _, results[kind] = await load(50, creates, call)
            after = cpu_seconds()
            cpu[kind] = {name: (after[name] - before[name]) * 1000 / creates for name in CPU_COMPONENTS}
            await asyncio.sleep(SETTLE_SECONDS)  # let the controller catch up before the next kind
        async with session.delete(f"{server}/api/v1/namespaces/{namespace}") as r:
            assert r.status in (200, 202)
        for _ in range(600):  # let the namespace go, so the next phase does not pay for its deletion
            async with session.get(f"{server}/api/v1/namespaces/{namespace}") as r:
                if r.status == 404:
                    break
            await asyncio.sleep(0.2)
    return results, cpu


@contextmanager
def noop_webhook(cluster: controlplane.Cluster, command_prefix: list[str]) -> Iterator[None]:
    """The no-op webhook running and registered under flinkmem's name and rules."""
    certs = ensure_self_signed(cluster.scratch_dir / "noop-certs", ["127.0.0.1"])
    port = free_port()
    script = Path(__file__).with_name("noop_webhook.py")
    command = [*command_prefix, sys.executable, str(script), str(certs.cert), str(certs.key), str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        base_url, ca_bundle = f"https://127.0.0.1:{port}", base64.b64encode(certs.ca.read_bytes()).decode()
        for config in (
            validating_configuration(DEFAULT_RESOURCE, base_url, ca_bundle),
            mutating_configuration(base_url, ca_bundle),
        ):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(config))
        yield
    finally:
        cluster.kubectl(
            "delete", "validatingwebhookconfiguration/flinkmem", "mutatingwebhookconfiguration/flinkmem", check=False
        )
        server.terminate()
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--creates", type=int, default=500)
    args = parser.parse_args()
    os.environ.pop("KUBECONFIG", None)  # always a private control plane, never the developer's cluster
    scratch = Path(tempfile.mkdtemp(prefix="flinkmem-bench-"))
    layout = controlplane.Layout(scratch / "cluster")
    with controlplane.session_cluster(scratch, layout) as cluster:
        return measure(args, cluster)


def measure(args: argparse.Namespace, cluster: controlplane.Cluster) -> int:
    scratch = cluster.scratch_dir
    kubeconfig = cluster.kubeconfig
    # flinkmem runs as its own user, as in a real install, so that the webhook configuration's
    # matchConditions spare it its own annotation writes (the load generator stays the admin).
    identity = cluster.user(FLINKMEM_USER, ["system:masters"])
    as_flinkmem = ["--service-account", FLINKMEM_USER]
    cores = sorted(os.sched_getaffinity(0))
    server_core, client_core = (cores[0], cores[-1]) if len(cores) > 1 else (cores[0], cores[0])
    pinned = ["taskset", "-c", str(server_core)]
    os.sched_setaffinity(0, {client_core})
    # Direct reviews first, on a settled control plane: a namespace of a thousand objects being
    # deleted in the background would otherwise be measured as webhook latency.
    with running_flinkmem(identity.kubeconfig, scratch / "direct", as_flinkmem, command_prefix=pinned) as op:
        direct_rows = asyncio.run(direct(op, args.requests))
    # The baseline runs with no flinkmem webhooks registered (the context above removed them).
    baseline, baseline_cpu = asyncio.run(through_api_server(kubeconfig, args.creates, "baseline", scratch))
    with noop_webhook(cluster, pinned):
        noop, noop_cpu = asyncio.run(through_api_server(kubeconfig, args.creates, "noop", scratch))
    with running_flinkmem(identity.kubeconfig, scratch / "op", as_flinkmem, command_prefix=pinned):
        measured, measured_cpu = asyncio.run(through_api_server(kubeconfig, args.creates, "flinkmem", scratch))
    print(f"Webhook benchmark: {os.cpu_count()} cores, server pinned to core {server_core}, load on {client_core}\n")
    print("| path | throughput | p50 | p99 |\n|---|---|---|---|")
    print("\n".join(direct_rows))
    print(
        f"\nThrough kube-apiserver: {PACED_TOTAL} creates per kind at a steady {PACED_RATE} creates/s (open "
        f"loop), then {args.creates} at concurrency 50 (closed loop):\n"
    )
    print(
        "| object | p50 without | p50 no-op | p50 flinkmem | p99 without | p99 no-op | p99 flinkmem "
        "| added p99, no-op | added p99, flinkmem |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, with_flinkmem in measured.items():
        p50 = [percentile(values, 0.5) * 1000 for values in (baseline[kind], noop[kind], with_flinkmem)]
        p99 = [percentile(values, 0.99) * 1000 for values in (baseline[kind], noop[kind], with_flinkmem)]
        print(
            f"| {kind} | "
            + " | ".join(f"{v:.1f} ms" for v in (*p50, *p99))
            + f" | {p99[1] - p99[0]:+.1f} ms | {p99[2] - p99[0]:+.1f} ms |"
        )
    print("\nCPU per create in the concurrency-50 phases (ms, all cores together), without / no-op / flinkmem:\n")
    print("| object | " + " | ".join(CPU_COMPONENTS) + " | total |")
    print("|---|" + "---|" * (len(CPU_COMPONENTS) + 1))
    for kind, with_cpu in measured_cpu.items():
        runs = (baseline_cpu[kind], noop_cpu[kind], with_cpu)
        cells = [" / ".join(f"{run[name]:.2f}" for run in runs) for name in CPU_COMPONENTS]
        totals = " / ".join(f"{sum(run.values()):.2f}" for run in runs)
        print(f"| {kind} | " + " | ".join(cells) + f" | {totals} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
