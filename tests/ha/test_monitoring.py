"""The chart's monitoring against a real Prometheus on the HA plane.

Prometheus 3 (built by ``make tools`` from the Prometheus Go module) runs inside the plane's network
namespace. It scrapes what the chart's ServiceMonitor selects, with the scrape configuration the
Prometheus Operator would generate from it (EndpointSlice discovery through the API server, the
Service's labels and port name, job = the Service's name), and the kube-apiserver itself. It loads the
rule groups of the chart's PrometheusRule as ``helm template`` renders them (shorter ``for`` than the
defaults, so the test need not wait minutes).

Then both replicas go down (the Deployment scaled to zero: the pods are deleted and the kubelet stops
their containers). ``FlinkmemNoReplicaReady`` fires, and so do the alerts on what the API server sees
meanwhile (FlinkDeployment creates refused because flinkmem cannot be called, JobManager pods let
through unsized), which also shows that the API server metrics the rules read exist under these names.
The replicas come back and the alert resolves. Every query of the Grafana dashboard is run by this
Prometheus, and the metrics it and the rules read from flinkmem are those a running replica exposes.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkmem.runtime.lifecycle import die_with_parent
from localplane.controlplane import tool_dir
from localplane.haplane import APISERVER_ADDRESS, APISERVER_PORT
from tests.e2e.test_webhooks import flinkdeployment, jobmanager_deployment
from tests.ha.conftest import RELEASE, RELEASE_NAMESPACE, REPLICAS, VALUES, Ha, wait_available
from tests.ha.harness import await_all
from tests.packaging.chart import find, render
from tests.packaging.promql import metric_names
from tests.packaging.test_monitoring import APISERVER_METRICS

pytestmark = pytest.mark.e2e

PROMETHEUS = "127.0.0.1:9090"  # of the plane's network namespace
BOUND = 180.0
SCRAPE = "2s"
# The chart's alerts with a `for` short enough for a test; the expressions are the chart's own.
MONITORING = {
    "serviceMonitor": {"enabled": True, "interval": SCRAPE, "scrapeTimeout": "1s"},
    "prometheusRule": {
        "enabled": True,
        "alerts": {
            "noReplicaReady": {"enabled": True, "for": "10s", "severity": "critical"},
            "admissionCallsFailing": {"enabled": True, "for": "0s", "severity": "critical", "ratio": 0.05},
            "podsAdmittedUnsized": {"enabled": True, "for": "0s", "severity": "warning"},
        },
    },
    "grafanaDashboard": {"enabled": True},
}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "10m", "$namespace": RELEASE_NAMESPACE, "$job": RELEASE}


def _label(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def scrape_config_of(monitor: dict[str, Any], server: str, tls: dict[str, str]) -> dict[str, Any]:
    """What the Prometheus Operator generates for a ServiceMonitor's (only) endpoint."""
    spec, meta = monitor["spec"], monitor["metadata"]
    (endpoint,) = spec["endpoints"]
    relabel: list[dict[str, Any]] = [
        {"source_labels": [f"__meta_kubernetes_service_label_{_label(key)}"], "regex": value, "action": "keep"}
        for key, value in spec["selector"]["matchLabels"].items()
    ]
    relabel += [
        {"source_labels": ["__meta_kubernetes_endpointslice_port_name"], "regex": endpoint["port"], "action": "keep"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
        {"target_label": "endpoint", "replacement": endpoint["port"]},
    ]
    return {
        "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/0",
        "scrape_interval": endpoint["interval"],
        "scrape_timeout": endpoint["scrapeTimeout"],
        "metrics_path": endpoint["path"],
        "scheme": endpoint["scheme"],
        "kubernetes_sd_configs": [
            {
                "role": "endpointslice",
                "api_server": server,
                "tls_config": tls,
                "namespaces": {"names": spec["namespaceSelector"]["matchNames"]},
            }
        ],
        "relabel_configs": relabel,
    }


def _get(path: str, **params: str) -> Any:
    url = f"http://{PROMETHEUS}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def query(expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _get("/api/v1/query", query=expr)["result"]
    return result


def alerts(state: str = "firing") -> set[str]:
    return {a["labels"]["alertname"] for a in _get("/api/v1/alerts")["alerts"] if a["state"] == state}


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    values = json.loads(json.dumps(VALUES))
    values["monitoring"] = MONITORING
    return render(values, release=RELEASE, namespace=RELEASE_NAMESPACE)


@pytest.fixture(scope="module")
def prometheus(ha: Ha, objects: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("prometheus")
    pki = ha.plane.layout.pki.dir
    tls = {"ca_file": str(pki / "ca.crt"), "cert_file": str(pki / "admin.crt"), "key_file": str(pki / "admin.key")}
    rules = root / "flinkmem-rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": find(objects, "PrometheusRule")["spec"]["groups"]}, sort_keys=False))
    config = {
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
        "rule_files": [str(rules)],
        "scrape_configs": [
            scrape_config_of(find(objects, "ServiceMonitor"), ha.plane.server, tls),
            {
                "job_name": "apiserver",
                "scheme": "https",
                "tls_config": tls,
                "static_configs": [{"targets": [f"{APISERVER_ADDRESS}:{APISERVER_PORT}"]}],
            },
        ],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    binary = tool_dir() / "prometheus"
    assert binary.exists(), f"{binary} is missing: run `make tools` (it builds prometheus)"
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address={PROMETHEUS}",
            "--storage.tsdb.retention.time=2h",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    try:
        await_all(lambda: process.poll() is None and _ready(f"http://{PROMETHEUS}/-/ready"), 60, "Prometheus ready")
        yield root
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _scale(ha: Ha, replicas: int) -> None:
    ha.plane.cluster.kubectl("scale", "deployment", RELEASE, "-n", RELEASE_NAMESPACE, f"--replicas={replicas}")


def _family(sample: str) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def _exposed_families(address: str) -> set[str]:
    """The metric families a running replica's /metrics declares (# TYPE lines)."""
    with urllib.request.urlopen(f"http://{address}:8080/metrics", timeout=5) as response:
        text = response.read().decode()
    return {_family(line.split()[2]) for line in text.splitlines() if line.startswith("# TYPE ")}


def test_no_replica_ready_fires_when_both_are_down_and_resolves_when_they_return(
    ha: Ha, prometheus: Path, objects: list[dict[str, Any]], figures: list[dict[str, Any]]
) -> None:
    wait_available(ha.plane, ha.kubelet)

    def both_up() -> bool:
        up = query(f'up{{job="{RELEASE}", namespace="{RELEASE_NAMESPACE}"}} == 1')
        return len(up) == REPLICAS and {r["metric"].get("pod") for r in up} == {p.name for p in ha.kubelet.pods()}

    await_all(both_up, BOUND, "Prometheus scraping both replicas through the ServiceMonitor's discovery")
    await_all(lambda: query('up{job="apiserver"} == 1'), BOUND, "Prometheus scraping the API server")
    # Before the first scrapes FlinkmemNoReplicaReady is pending (no `up` yet); then all is quiet.
    await_all(lambda: not alerts("firing") | alerts("pending"), BOUND, "no alert while all is well")

    ha.plane.cluster.kubectl("create", "namespace", "monitoring-check")
    await_all(
        lambda: ha.rest.get("/api/v1/namespaces/monitoring-check/serviceaccounts/default").ok, 60, "the namespace"
    )
    fds = "/apis/flink.apache.org/v1beta1/namespaces/monitoring-check/flinkdeployments"
    refused = ha.rest.post(fds, flinkdeployment("conflict", {"jobmanager.memory.heap.size": "4g"}, memory="1g"))
    assert refused.status == 422 and "flinkmem refused" in refused.message

    stops_before = len([r for r in ha.kubelet.records() if r.what == "stopped"])
    down = time.monotonic()
    _scale(ha, 0)
    await_all(lambda: not ha.kubelet.pods(), BOUND, "both replicas stopped")
    stopped = [float(r.detail) for r in ha.kubelet.records() if r.what == "stopped"][stops_before:]
    # While flinkmem is down: creates the API server cannot check (refused: fail closed) and
    # JobManager pods it lets through unsized (fail open), a few seconds apart so that rates see them.
    failures = 0
    for i in range(8):
        answer = ha.rest.post(fds, flinkdeployment(f"while-down-{i}", {}, memory="2g"))
        assert answer.status >= 400 and "failed calling webhook" in answer.message, answer.message
        failures += 1
        deployments = "/apis/apps/v1/namespaces/monitoring-check/deployments"
        assert ha.rest.post(deployments, jobmanager_deployment(f"unsized-{i}")).ok
        time.sleep(2)
    expected = {"FlinkmemNoReplicaReady", "FlinkmemAdmissionCallsFailing", "FlinkmemPodsAdmittedUnsized"}
    _, fired_after = await_all(lambda: expected <= alerts("firing"), BOUND, f"{sorted(expected)} firing")
    fired_at = time.monotonic()
    # The API server's admission webhook metrics the rules and the dashboard read, by their real names.
    names = set(_get("/api/v1/label/__name__/values"))
    assert names >= APISERVER_METRICS, f"not exported by kube-apiserver: {APISERVER_METRICS - names}"

    back = time.monotonic()
    _scale(ha, REPLICAS)
    wait_available(ha.plane, ha.kubelet)
    _, resolved_after = await_all(
        lambda: "FlinkmemNoReplicaReady" not in alerts("firing") | alerts("pending"),
        BOUND,
        "FlinkmemNoReplicaReady resolved",
    )
    figures.append(
        {
            "case": "monitoring: both replicas down (scaled to 0), then back",
            "s each replica took to stop (SIGTERM, grace 30 s)": ", ".join(f"{s:.1f}" for s in stopped),
            "FlinkDeployment creates refused while down": failures,
            "s from scale-down until the three alerts fired": fired_at - down,
            "  of which waiting for them after the failures": fired_after,
            "s from scale-up until FlinkmemNoReplicaReady resolved": time.monotonic() - back,
            "  of which after the Deployment was available": resolved_after,
        }
    )


def test_the_dashboard_queries_run_and_read_what_flinkmem_exposes(
    ha: Ha, prometheus: Path, objects: list[dict[str, Any]]
) -> None:
    wait_available(ha.plane, ha.kubelet)
    board = json.loads(find(objects, "ConfigMap", f"{RELEASE}-dashboard")["data"]["flinkmem.json"])
    exposed = _exposed_families(ha.kubelet.pods()[0].ip)
    rules = [r["expr"] for g in find(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for expr in [*queries, *rules]:
        flinkmem = {_family(n) for n in metric_names(expr) if n.startswith("flinkmem_")}
        assert flinkmem <= exposed, f"{expr} reads {flinkmem - exposed}, which a running replica does not expose"
    answered = 0
    for expr in queries:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        result = query(expr)  # Prometheus' own parser and engine: an error fails here
        answered += bool(result)
    # The panels on admissions, the replicas and the API server have data after the suite's load.
    assert query(f'sum(up{{job="{RELEASE}", namespace="{RELEASE_NAMESPACE}"}})')[0]["value"][1] == str(REPLICAS)
    assert answered >= len(queries) // 2, f"only {answered} of {len(queries)} dashboard queries returned data"
