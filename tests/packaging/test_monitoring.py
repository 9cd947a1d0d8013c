"""The chart's monitoring: ServiceMonitor, PrometheusRule and Grafana dashboard.

- Off by default; each switch renders exactly its object.
- The alert rules pass ``promtool check rules`` and ``promtool test rules`` (tests/packaging/rules/:
  each alert fires on the series that should fire it, and stays quiet on those that should not),
  with the promtool that ``make tools`` builds from the Prometheus Go module.
- Every metric the dashboard and the rules read is one that flinkmem exports (its metrics module),
  one of the API server's admission webhook metrics (the HA suite checks those names against a
  running kube-apiserver), ``up``, cert-manager's or kube-state-metrics'.
- With the local control plane: the Prometheus Operator's real CRDs (from its Go module, ``make
  tools``) are applied and the rendered ServiceMonitor and PrometheusRule pass a server-side dry run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkmem.runtime.metrics import Metrics
from localplane.controlplane import Cluster, tool_dir
from tests.packaging.chart import CHART, find, helm, kinds, kube_version, render
from tests.packaging.promql import metric_names

RULE_TESTS = Path(__file__).parent / "rules"
MONITORING_ON: dict[str, Any] = {
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }
}
ALERTS = {
    "FlinkmemNoReplicaReady",
    "FlinkmemAdmissionCallsFailing",
    "FlinkmemAdmissionLatencyHigh",
    "FlinkmemPodsAdmittedUnsized",
    "FlinkmemRefusalRateHigh",
    "FlinkmemDriftNotFixed",
    "FlinkmemCertificateExpiringSoon",
    "FlinkmemReplicaNotReady",
    "FlinkmemServingCertificateExpiring",
}
# The API server's admission webhook metrics the rules and the dashboard read (k8s.io/apiserver,
# pkg/admission/metrics); tests/ha/test_monitoring.py finds each on the running kube-apiserver.
APISERVER_METRICS = {
    "apiserver_admission_webhook_request_total",
    "apiserver_admission_webhook_rejection_count",
    "apiserver_admission_webhook_fail_open_count",
    "apiserver_admission_webhook_admission_duration_seconds_bucket",
}
OTHER_METRICS = {
    "up",  # Prometheus' own, per target
    "kube_deployment_status_replicas_available",  # kube-state-metrics, where it runs
    "certmanager_certificate_expiration_timestamp_seconds",  # cert-manager's controller
}


def exported_metric_names() -> set[str]:
    """The sample names flinkmem's /metrics can carry, from its metrics module."""
    names: set[str] = set()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def _family(sample: str) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def promtool() -> Path:
    path = tool_dir() / "promtool"
    assert path.exists(), f"{path} is missing: run `make tools` (it builds promtool)"
    return path


def rule_groups(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    objs = render(values if values is not None else MONITORING_ON)
    groups: list[dict[str, Any]] = find(objs, "PrometheusRule")["spec"]["groups"]
    return groups


def dashboard(values: dict[str, Any] | None = None) -> dict[str, Any]:
    config = find(render(values if values is not None else MONITORING_ON), "ConfigMap", "flinkmem-dashboard")
    board: dict[str, Any] = json.loads(config["data"]["flinkmem.json"])
    return board


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    queries = []
    for panel in board["panels"]:
        queries += [target["expr"] for target in panel.get("targets", [])]
    return queries


def test_monitoring_is_off_by_default() -> None:
    names = set(kinds(render({})))
    assert not names & {"ServiceMonitor", "PrometheusRule"}
    assert not [o for o in render({}) if o["kind"] == "ConfigMap"]


def test_each_switch_renders_its_object() -> None:
    switches = {"serviceMonitor": "ServiceMonitor", "prometheusRule": "PrometheusRule", "grafanaDashboard": "ConfigMap"}
    base = kinds(render({}))
    for key, kind in switches.items():
        added = kinds(render({"monitoring": {key: {"enabled": True}}}))
        for existing in base:
            added.remove(existing)
        assert added == [kind], key


def test_the_service_monitor_scrapes_every_replica_through_the_service() -> None:
    objs = render({"monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})
    monitor, service = find(objs, "ServiceMonitor"), find(objs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), "selects flinkmem's Service"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["flinkmem"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    deployment = find(objs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert port["targetPort"] == "health" and any(p["name"] == "health" for p in container["ports"])
    assert endpoint["path"] == "/metrics" and endpoint["scheme"] == "http"


def test_every_alert_has_a_runbook_section() -> None:
    runbooks = (Path(__file__).resolve().parents[2] / "docs" / "runbooks.md").read_text()
    values = json.loads(json.dumps(MONITORING_ON))
    values["monitoring"]["prometheusRule"]["runbookUrl"] = "https://runbooks.example/flinkmem"
    rules = [r for g in rule_groups(values) for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        assert f"\n## {rule['alert']}\n" in runbooks, f"docs/runbooks.md has no section for {rule['alert']}"
        anchor = rule["alert"].lower()
        assert rule["annotations"]["runbook_url"] == f"https://runbooks.example/flinkmem#{anchor}"
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alerts_are_switched_off_and_tuned_one_by_one() -> None:
    values = json.loads(json.dumps(MONITORING_ON))
    values["monitoring"]["prometheusRule"]["alerts"] = {
        "driftNotFixed": {"enabled": False, "for": "30m", "severity": "warning"},
        "noReplicaReady": {"enabled": True, "for": "30s", "severity": "page"},
    }
    values["monitoring"]["prometheusRule"]["additionalAlertLabels"] = {"team": "platform"}
    rules = {r["alert"]: r for g in rule_groups(values) for r in g["rules"]}
    assert "FlinkmemDriftNotFixed" not in rules
    assert rules["FlinkmemNoReplicaReady"]["for"] == "30s"
    assert rules["FlinkmemNoReplicaReady"]["labels"] == {"severity": "page", "team": "platform"}
    assert rules["FlinkmemRefusalRateHigh"]["labels"]["team"] == "platform"


def test_the_certificate_alert_needs_cert_manager() -> None:
    for mode, values in (("helm", {"mode": "helm"}), ("secret", {"mode": "secret", "secret": {"name": "x"}})):
        chart_values = json.loads(json.dumps(MONITORING_ON))
        chart_values["tls"] = values
        if mode == "secret":
            chart_values["tls"]["secret"]["caBundle"] = "Y2E="
        alerts = {r["alert"] for g in rule_groups(chart_values) for r in g["rules"]}
        assert alerts == ALERTS - {"FlinkmemCertificateExpiringSoon"}, mode


def test_the_values_schema_refuses_unknown_alerts_and_bad_durations() -> None:
    for bad in (
        "monitoring.prometheusRule.alerts.noSuchAlert.enabled=true",
        "monitoring.prometheusRule.alerts.noReplicaReady.for=soon",
        "monitoring.prometheusRule.alerts.admissionCallsFailing.ratio=2",
        "monitoring.serviceMonitor.interval=30",
    ):
        result = helm("template", "x", str(CHART), "--kube-version", kube_version(), "--set", bad, check=False)
        assert result.returncode != 0, bad
        assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


def _write_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "flinkmem-rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False))
    return rules


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    rules = _write_rules(tmp_path)
    result = subprocess.run(
        [str(promtool()), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_each_alert_fires_when_it_should_and_only_then(tmp_path: Path) -> None:
    """promtool's rule unit tests (tests/packaging/rules/alerts.test.yaml) on the rendered rules."""
    _write_rules(tmp_path)
    tests = yaml.safe_load((RULE_TESTS / "alerts.test.yaml").read_text())
    tests["rule_files"] = ["flinkmem-rules.yaml"]
    tested = {case["alertname"] for group in tests["tests"] for case in group.get("alert_rule_test", [])}
    assert tested == ALERTS, f"alerts without a unit test: {ALERTS - tested}"
    (tmp_path / "alerts.test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [str(promtool()), "test", "rules", "alerts.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_dashboard_and_rules_read_only_metrics_that_exist() -> None:
    exported = exported_metric_names()
    known = exported | APISERVER_METRICS | OTHER_METRICS
    board = dashboard()
    read: set[str] = set()
    for query in dashboard_queries(board):
        names = metric_names(query)
        assert names, f"no metric in {query}"
        assert names <= known, f"{query} reads {names - known}, which nothing exports"
        read |= names
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            selector = variable["query"]["query"].removeprefix("label_values(").rsplit(",", 1)[0]
            assert metric_names(selector) <= exported, variable
    shown = {_family(name) for name in read}
    assert {f.name for f in Metrics().registry.collect()} <= shown, "every metric flinkmem exports is on the dashboard"
    for group in rule_groups():
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            assert names <= known, f"{rule['alert']} reads {names - known}, which nothing exports"


def test_dashboard_is_a_grafana_dashboard_for_the_sidecar() -> None:
    objs = render(
        {"monitoring": {"grafanaDashboard": {"enabled": True, "namespace": "grafana", "annotations": {"k": "v"}}}}
    )
    config = find(objs, "ConfigMap", "flinkmem-dashboard")
    assert config["metadata"]["namespace"] == "grafana"
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["annotations"] == {"k": "v"}
    board = json.loads(config["data"]["flinkmem.json"])
    assert board["uid"] == "flinkmem" and board["title"] == "flinkmem"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]


def _prometheus_operator_crds() -> list[Path]:
    crds = [tool_dir() / f"monitoring.coreos.com_{plural}.yaml" for plural in ("servicemonitors", "prometheusrules")]
    for crd in crds:
        assert crd.exists(), f"{crd} is missing: run `make tools` (it fetches the Prometheus Operator's CRDs)"
    return crds


@pytest.mark.e2e
def test_the_api_server_accepts_the_monitoring_objects_under_the_real_crds(cluster: Cluster, namespace: str) -> None:
    for crd in _prometheus_operator_crds():
        # Server-side: these CRDs are too large for kubectl's last-applied annotation.
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crd))
    values = json.loads(json.dumps(MONITORING_ON))
    values["monitoring"]["serviceMonitor"]["labels"] = {"release": "prometheus"}
    values["monitoring"]["prometheusRule"]["runbookUrl"] = "https://runbooks.example/flinkmem"
    objs = [
        o for o in render(values, namespace=namespace) if o["kind"] in ("ServiceMonitor", "PrometheusRule", "ConfigMap")
    ]
    assert sorted(kinds(objs)) == ["ConfigMap", "PrometheusRule", "ServiceMonitor"]
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=flinkmem-packaging-test",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
        input=yaml.safe_dump_all(objs, sort_keys=False),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"warnings from the API server:\n{result.stderr}"
    assert len([line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]) == 3

    # The CRDs' schemas are enforced: a broken object is refused, so the dry run above means something.
    broken = json.loads(json.dumps(find(objs, "ServiceMonitor")))
    broken["spec"]["endpoints"][0]["scheme"] = "gopher"
    refused = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(broken), check=False
    )
    assert refused.returncode != 0 and "scheme" in refused.stderr, refused.stderr
