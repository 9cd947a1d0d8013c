"""A hostile tenant against flinkmem, through the real API server.

Everything here is sent the way a tenant can send it: objects created or dry-run through
kube-apiserver (which calls flinkmem with its webhook client certificate), or HTTPS straight to
flinkmem's port without the API server's certificate. flinkmem must answer each correctly, stay
healthy, keep its memory bounded, and keep answering another tenant meanwhile.

Figures (latencies, memory) are printed at the end of each test; only outcomes, counts and sizes are
asserted, never timings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from benchmarks import procstat
from localplane.controlplane import Cluster, mint_client_cert, wait_until
from localplane.serve import RunningOperator, running_flinkmem
from tests.e2e.test_webhooks import flinkdeployment

pytestmark = pytest.mark.e2e

MIB = 1 << 20
DIGITS = "1" * 20_000

# Every memory option both roles read as a size, fraction or count.
NUMERIC_OPTIONS = [
    *(
        f"jobmanager.memory.{name}"
        for name in (
            "flink.size",
            "heap.size",
            "off-heap.size",
            "jvm-metaspace.size",
            "jvm-overhead.min",
            "jvm-overhead.max",
            "jvm-overhead.fraction",
        )
    ),
    *(
        f"taskmanager.memory.{name}"
        for name in (
            "flink.size",
            "framework.heap.size",
            "framework.off-heap.size",
            "task.heap.size",
            "task.off-heap.size",
            "managed.size",
            "managed.fraction",
            "network.min",
            "network.max",
            "network.fraction",
            "jvm-metaspace.size",
            "jvm-overhead.min",
            "jvm-overhead.max",
            "jvm-overhead.fraction",
        )
    ),
    "taskmanager.numberOfTaskSlots",
]


@pytest.fixture(scope="module")
def flinkmem(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    with running_flinkmem(cluster.kubeconfig, tmp_path_factory.mktemp("hostile")) as operator:
        yield operator
        assert operator.alive(), operator.log()[-3000:]


def _dry_run(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> Any:
    return cluster.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-", input=json.dumps(obj), check=False
    )


def _warnings(stderr: str) -> str:
    """kubectl's warnings as one text: flinkmem splits a long warning into lines kubectl prints apart."""
    return stderr.replace("\nWarning: ", " ")


def _healthy(flinkmem: RunningOperator) -> None:
    assert flinkmem.alive(), flinkmem.log()[-3000:]
    assert flinkmem.get("/healthz")[0] == 200
    assert flinkmem.get("/readyz")[0] == 200


def _jobmanager_pod(app: str, env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    main: dict[str, Any] = {"name": "flink-main-container", "image": "flink:2.1"}
    if env:
        main["env"] = env
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-jobmanager",
            "labels": {"app": app, "component": "jobmanager", "type": "flink-native-kubernetes"},
        },
        "spec": {"containers": [main]},
    }


def _flink_configmap(app: str, text: str) -> dict[str, Any]:
    # As Flink's native client writes it: flink-config-<cluster-id>, labelled with the cluster and type.
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"flink-config-{app}",
            "labels": {"app": app, "type": "flink-native-kubernetes"},
        },
        "data": {"config.yaml": text},
    }


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_in_flinks_configmap_leaves_the_pod_unsized(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    # 9^9 = 387,420,489 scalars once expanded, in under a kilobyte.
    text = _alias_bomb() + "jobmanager.memory.process.size: 2g\ntaskmanager.memory.process.size: 2g\n"
    assert len(text) < 1024
    created = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_flink_configmap("bomb", text)))
    assert created.returncode == 0, created.stderr
    result = _dry_run(cluster, namespace, _jobmanager_pod("bomb"))
    assert result.returncode == 0, result.stderr  # a pod is never refused
    warnings = _warnings(result.stderr)
    assert "flinkmem left this JobManager pod unchanged" in warnings
    assert "anchor &a0 is refused" in warnings
    pod = json.loads(result.stdout)
    assert "flinkmem.io/jvm-flags" not in (pod["metadata"].get("annotations") or {})
    _healthy(flinkmem)


@pytest.mark.parametrize("value", [DIGITS, DIGITS + "x"], ids=["digits", "digits-then-x"])
def test_twenty_thousand_digits_in_any_memory_option_are_refused_naming_it(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, value: str
) -> None:
    unnamed = []
    for key in NUMERIC_OPTIONS:
        result = _dry_run(cluster, namespace, flinkdeployment("digits", {key: value}))
        assert result.returncode != 0, f"{key}: admitted"
        assert "denied the request: flinkmem refused" in result.stderr, result.stderr[:500]
        if key not in result.stderr:
            unnamed.append(key)
        # The value is cut in the message, never echoed whole.
        assert DIGITS not in result.stderr and len(result.stderr) < 10_000
    assert unnamed == []
    _healthy(flinkmem)


def test_oversized_java_options_in_a_pod_leave_it_unsized_naming_the_variable(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    # Within the API server's limits (the pod is under 1.5 MiB), beyond what Linux can exec.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(flinkdeployment("opts", {})))
    env = [{"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-Xmx1g " * (MIB // 7)}]
    result = _dry_run(cluster, namespace, _jobmanager_pod("opts", env))
    assert result.returncode == 0, result.stderr[:2000]
    warnings = _warnings(result.stderr)
    assert "FLINK_ENV_JAVA_OPTS_JM" in warnings and "MAX_ARG_STRLEN" in warnings
    _healthy(flinkmem)


def _other_ca_client(directory: Path) -> tuple[Path, Path]:
    """A client certificate named like the API server's, signed by a CA of the tenant's own."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-webhook-client")])
    now = time.time()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.fromtimestamp(now - 60, dt.UTC))
        .not_valid_after(dt.datetime.fromtimestamp(now + 3600, dt.UTC))
        .sign(key, hashes.SHA256())
    )
    paths = directory / "other.crt", directory / "other.key"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def _post(flinkmem: RunningOperator, client: tuple[Path, Path] | None) -> int:
    """The HTTP status of a well-formed review sent straight to flinkmem; 0 when TLS refused the caller."""
    context = ssl.create_default_context(cafile=str(flinkmem.ca_file))
    if client is not None:
        context.load_cert_chain(*client)
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "forged",
            "resource": {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"},
            "operation": "CREATE",
            "namespace": "default",
            "userInfo": {"username": "tenant"},
            "object": flinkdeployment("forged", {}),
        },
    }
    request = urllib.request.Request(
        f"{flinkmem.webhook_url}/validate-flinkdeployment",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_reviews_not_from_the_api_server_are_not_answered(
    cluster: Cluster, flinkmem: RunningOperator, tmp_path: Path
) -> None:
    assert flinkmem.client_cert is not None, "the local plane's API server presents a webhook client certificate"
    assert cluster.pki_dir is not None
    tenant = tmp_path / "tenant.crt", tmp_path / "tenant.key"
    cert, key = mint_client_cert(cluster.pki_dir, "system:serviceaccount:team-a:default")
    tenant[0].write_bytes(cert)
    tenant[1].write_bytes(key)
    assert _post(flinkmem, None) == 0, "no client certificate"
    assert _post(flinkmem, _other_ca_client(tmp_path)) == 0, "the API server's name, another CA"
    assert _post(flinkmem, tenant) == 403, "the API server's CA, another name"
    assert _post(flinkmem, flinkmem.client_cert) == 200
    _healthy(flinkmem)


def _large_deployment(name: str) -> dict[str, Any]:
    # About 2.6 MiB: under the API server's 3 MiB request limit (a dry run is never stored in etcd).
    return flinkdeployment(name, {f"pipeline.tenant-option-{i}": "v" * 8 for i in range(60_000)})


class _Sampler:
    """The peak memory (PSS) of flinkmem's process tree, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, procstat.memory(procstat.process_tree(self.pid)).pss)
            self._stop.wait(0.1)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class _OtherTenant:
    """Another tenant creating ordinary FlinkDeployments in its own namespace, one after another, for as
    long as an attack lasts; every create must be admitted. Its latencies are printed, not asserted."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = f"{namespace}-b"
        cluster.kubectl("create", "namespace", self.namespace)
        wait_until(
            lambda: cluster.kubectl("get", "sa", "default", "-n", self.namespace, check=False).returncode == 0,
            what="the other tenant's namespace",
        )
        self.attack_over = threading.Event()
        self.during: list[float] = []  # seconds per create made while the attack was on

    def run(self) -> None:
        index = 0
        while not self.attack_over.is_set() or not self.during:
            started = time.monotonic()
            result = self.cluster.kubectl(
                "apply", "-n", self.namespace, "-f", "-",
                input=json.dumps(flinkdeployment(f"b{index}", {})), check=False, timeout=300,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            if not self.attack_over.is_set():
                self.during.append(time.monotonic() - started)
            index += 1

    def summary(self) -> str:
        low, high = min(self.during), max(self.during)
        return f"the other tenant's {len(self.during)} creates meanwhile took {low:.2f}-{high:.2f} s"


def _validations(flinkmem: RunningOperator) -> float:
    prefix = 'flinkmem_admission_requests_total{decision="'
    lines = flinkmem.metrics().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix) and "validate" in line)


def test_another_tenant_is_answered_during_the_attacks(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator, tmp_path: Path
) -> None:
    # The attacks of the tests above at once, over and over: alias-bomb pods, 20,000-digit values and
    # forged reviews straight to the port.
    bomb = _alias_bomb() + "jobmanager.memory.process.size: 2g\n"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_flink_configmap("bomb", bomb)))
    other = _OtherTenant(cluster, namespace)
    rounds = 15

    def bombs() -> None:
        for _ in range(rounds):
            assert _dry_run(cluster, namespace, _jobmanager_pod("bomb")).returncode == 0

    def digits() -> None:
        for index in range(rounds):
            key = NUMERIC_OPTIONS[index % len(NUMERIC_OPTIONS)]
            assert _dry_run(cluster, namespace, flinkdeployment("digits", {key: DIGITS})).returncode != 0

    def forged() -> None:
        for _ in range(rounds * 4):
            assert _post(flinkmem, None) == 0

    with ThreadPoolExecutor(max_workers=4) as pool:
        tenant = pool.submit(other.run)
        attacks = [pool.submit(attack) for attack in (bombs, digits, forged)]
        for attack in attacks:
            attack.result()
        other.attack_over.set()
        tenant.result()
    print(f"\nalias bombs, 20,000-digit values and forged reviews, {rounds} rounds each: {other.summary()}")
    assert other.during
    _healthy(flinkmem)


def test_a_flood_of_large_reviews_never_stalls_another_tenant(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    hostile, body = 8, json.dumps(_large_deployment("flood"))
    assert 2 * MIB < len(body) < 3 * MIB
    other = _OtherTenant(cluster, namespace)
    before = procstat.memory(procstat.process_tree(flinkmem.process.pid)).pss
    reviewed = _validations(flinkmem)

    def send_one(index: int) -> str:
        result = cluster.kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-", input=body, check=False, timeout=300
        )
        return "admitted" if result.returncode == 0 else result.stderr.strip().splitlines()[-1][:160]

    with _Sampler(flinkmem.process.pid) as sampler, ThreadPoolExecutor(max_workers=hostile + 1) as pool:
        tenant = pool.submit(other.run)
        outcomes = [future.result() for future in [pool.submit(send_one, i) for i in range(hostile)]]
        other.attack_over.set()
        tenant.result()
    print(
        f"\nflood of {hostile} x {len(body) / MIB:.1f} MiB dry runs: {outcomes.count('admitted')} admitted, "
        f"others: {sorted(set(outcomes) - {'admitted'})}; flinkmem reviewed "
        f"{_validations(flinkmem) - reviewed:.0f} FlinkDeployments meanwhile; {other.summary()}; "
        f"flinkmem PSS {before / MIB:.0f} MiB before, peak {sampler.peak / MIB:.0f} MiB"
    )
    assert other.during
    # Large reviews take turns, so at most a few are decoded at once: far below the chart's 512Mi limit.
    assert sampler.peak - before < 200 * MIB
    _healthy(flinkmem)


def _reported(cluster: Cluster, namespace: str, reason: str) -> int:
    """How many objects in `namespace` have an Event with `reason`."""
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", f"reason={reason}", "-o", "json")
    return len({e["involvedObject"]["name"] for e in json.loads(out.stdout)["items"]})


def _large_flink_configmap(index: int) -> dict[str, Any]:
    """Flink's own ConfigMap of a cluster at 900 KiB: its `config.yaml` (memory options and 200 KiB of
    other options, under the 256 KiB flinkmem reads) and 700 KiB of other files, as a tenant may add."""
    options = "".join(f"pipeline.tenant-option-{i}: {'v' * 40}\n" for i in range(3_000))
    text = f"jobmanager.memory.process.size: {1000 + index}m\ntaskmanager.memory.process.size: 2g\n{options}"
    configmap = _flink_configmap(f"c{index}", text)
    configmap["data"]["log4j-console.properties"] = "# " + "x" * (700 * 1024)
    return configmap


def test_large_flink_configmaps_cost_flinkmem_little_memory(
    cluster: Cluster, namespace: str, flinkmem: RunningOperator
) -> None:
    warm_up, count = 15, 45
    for index in range(warm_up + count):
        # A FlinkDeployment of the same cluster: the controller compares it with Flink's ConfigMap.
        applied = cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", input=json.dumps(flinkdeployment(f"c{index}", {})), check=False
        )
        assert applied.returncode == 0, applied.stderr
    wait_until(lambda: _reported(cluster, namespace, "MemoryResolved") == warm_up + count or None, timeout=300,
               what=f"{warm_up + count} MemoryResolved events")  # fmt: skip

    def pss() -> int:
        return procstat.memory(procstat.process_tree(flinkmem.process.pid)).pss

    def create_configmaps(indices: range) -> int:
        size = 0
        for index in indices:
            configmap = _large_flink_configmap(index)
            assert len(configmap["data"]["config.yaml"]) < 256 * 1024
            size += sum(len(text) for text in configmap["data"].values())
            created = cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(configmap), check=False)
            assert created.returncode == 0, created.stderr
        # Each ConfigMap read, resolved and compared: the controller reports every one as differing.
        wait_until(lambda: _reported(cluster, namespace, "MemoryConfigDiffers") == indices.stop or None,
                   timeout=600, what=f"{indices.stop} MemoryConfigDiffers events")  # fmt: skip
        return size

    # The first ones grow buffers that are then reused (the watch streams', the allocator's); what is
    # measured is what the next ones add, from the lowest level flinkmem settles to after the warm-up.
    initial = pss()
    create_configmaps(range(warm_up))
    settling: list[int] = []

    def sample() -> None:
        settling.append(pss())

    with contextlib.suppress(TimeoutError):
        wait_until(sample, timeout=15, what="15 s of samples")
    before = min(settling)
    size = create_configmaps(range(warm_up, warm_up + count))
    assert size > count * 880 * 1024

    # Kept whole, they would take 40 MiB in each process; only their memory options are kept. Their
    # garbage goes within seconds (flinkmem collects once a process has grown by 8 MiB, or by 1 MiB for
    # 10 s); the deadline is for a slow machine: memory that stays misses it.
    samples: list[int] = []

    def settled() -> bool | None:
        samples.append(pss())
        return samples[-1] - before < 32 * MIB or None

    with contextlib.suppress(TimeoutError):
        wait_until(settled, timeout=60, what="flinkmem's memory back within 32 MiB of before")
    figures = " -> ".join(f"{value / MIB:.0f}" for value in (initial, before, max(samples), samples[-1]))
    print(f"\n{count} Flink ConfigMaps of {size / count / 1024:.0f} KiB after {warm_up}: flinkmem PSS "
          f"{figures} MiB (cold, warmed up, peak, settled)")  # fmt: skip
    assert samples[-1] - before < 32 * MIB
    _healthy(flinkmem)
