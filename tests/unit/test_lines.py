"""The per-line table (`engine.lines`) and what flinkmem does with lines it is not exact for.

Expected values come from real Flink: each line's jars measured against the same configurations
(the notes of the line measurement, and the differential suites, which run every supported line).
Where a value holds "from" a line, it holds up to the next value's line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flinkmem.cli import main
from flinkmem.cli.batch import resolve_line_in_python, resolve_record
from flinkmem.decisions.container import container_memory
from flinkmem.decisions.deployment import Outcome, review_flinkdeployment
from flinkmem.decisions.javaopts import java_opts_sources
from flinkmem.decisions.policy import ValidationMode
from flinkmem.decisions.reconcile import reconcile_deployment
from flinkmem.decisions.validation import validate_role
from flinkmem.engine import (
    DeploymentMode,
    FlinkMemError,
    FlinkVersion,
    UnsupportedInput,
    resolve_jobmanager,
    resolve_taskmanager,
)
from flinkmem.engine.lines import (
    CONFIG_YAML,
    FLINK_CONF_YAML,
    LINES,
    NEWEST,
    ListSyntax,
    Support,
    TotalsInPod,
    line_notices,
    line_of,
    not_exact_reason,
    support_of,
)
from flinkmem.sources.model import FlinkSource
from flinkmem.sources.roles import JOBMANAGER, TASKMANAGER
from tests.unit.admission_harness import FD, PODS, Harness, Lookup, review
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

NATIVE, STANDALONE = DeploymentMode.NATIVE, DeploymentMode.STANDALONE
P = "taskmanager.memory.process.size"
F = "taskmanager.memory.flink.size"
FG = "cluster.fine-grained-resource-management.enabled"
DECLARATIVE = "cluster.declarative-resource-management.enabled"
ALL_LINES = [f"{major}.{minor}" for major, minor in LINES]


def v(text: str) -> FlinkVersion:
    return FlinkVersion.parse(text)


def lines_from(first: str, last: str = "2.3") -> list[str]:
    low, high = v(first), v(last)
    return [line for line in ALL_LINES if low <= v(line) <= high]


# --- the table ---------------------------------------------------------------------------------


def test_the_table_holds_every_line_from_1_13_to_2_3_once() -> None:
    assert [*(f"1.{minor}" for minor in range(13, 21)), *(f"2.{minor}" for minor in range(4))] == ALL_LINES
    assert NEWEST is LINES[2, 3]
    for key, line in LINES.items():
        assert (line.major, line.minor) == key and str(line) == f"{key[0]}.{key[1]}"


# (field, {first line: value from that line on}): where each behaviour changed (notes R1-R15).
CHANGES: list[tuple[str, dict[str, object]]] = [
    ("network_max_default", {"1.13": 1 << 30, "1.17": (1 << 63) - 1}),
    (
        "totals_in_pod",
        {
            "1.13": TotalsInPod.KEPT_UNLESS_FINE_GRAINED_AND_DECLARATIVE,
            "1.14": TotalsInPod.KEPT_UNLESS_FINE_GRAINED,
            "1.18": TotalsInPod.DROPPED_UNLESS_FINE_GRAINED_OFF,
            "1.19": TotalsInPod.DROPPED,
        },
    ),
    ("cpu_decimals", {"1.13": None, "1.14": 8}),
    (
        "kubernetes_cpu_keys",
        {
            "1.13": ("kubernetes.taskmanager.cpu",),
            "1.17": ("kubernetes.taskmanager.cpu.amount", "kubernetes.taskmanager.cpu"),
        },
    ),
    ("quoted_external_resources", {"1.13": False, "1.15": True}),
    (
        "list_syntax",
        {"1.13": ListSyntax.SEMICOLON, "1.19": ListSyntax.YAML_IN_CONFIG_YAML, "2.0": ListSyntax.YAML},
    ),
    ("memory_limit_factor", {"1.13": False, "1.15": True}),
    (
        "config_files",
        {"1.13": (FLINK_CONF_YAML,), "1.19": (FLINK_CONF_YAML, CONFIG_YAML), "2.0": (CONFIG_YAML,)},
    ),
    ("legacy_memory_options", {"1.13": True, "2.0": False}),
    ("java_opts_keys", {"1.13": ("env.java.opts",), "1.17": ("env.java.opts.all", "env.java.opts")}),
    ("java_default_opts", {"1.13": False, "1.19": True}),
]


@pytest.mark.parametrize(("field", "changes"), CHANGES, ids=[field for field, _ in CHANGES])
def test_each_behaviour_changes_where_flink_changed_it(field: str, changes: dict[str, object]) -> None:
    for line in ALL_LINES:
        since = max((first for first in changes if v(first) <= v(line)), key=v)
        assert getattr(LINES[v(line).major, v(line).minor or 0], field) == changes[since], (field, line)


def test_yaml_lists_depend_on_the_file_on_1_19_and_1_20_only() -> None:
    for line in ALL_LINES:
        rules = line_of(v(line))
        by_file = {file: rules.yaml_lists(file) for file in (None, CONFIG_YAML, FLINK_CONF_YAML)}
        if v(line) < v("1.19"):
            assert by_file == {None: False, CONFIG_YAML: False, FLINK_CONF_YAML: False}
        elif v(line) < v("2.0"):
            assert by_file == {None: True, CONFIG_YAML: True, FLINK_CONF_YAML: False}
        else:
            assert by_file == {None: True, CONFIG_YAML: True, FLINK_CONF_YAML: True}


# --- support -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "support"),
    [
        *((line, Support.EXACT) for line in ALL_LINES),
        ("v1_13", Support.EXACT),
        ("1.13.6", Support.EXACT),
        ("v2_x", Support.EXACT),
        ("2.4", Support.UNRELEASED),
        ("v2_4", Support.UNRELEASED),
        ("2.10.1", Support.UNRELEASED),
        ("1.12", Support.UNSUPPORTED),
        ("1.12.5", Support.UNSUPPORTED),
        ("v1_11", Support.UNSUPPORTED),
        ("1.0", Support.UNSUPPORTED),
        ("1.21", Support.UNSUPPORTED),
        ("v1_x", Support.UNSUPPORTED),
        ("3.0", Support.UNSUPPORTED),
        ("v3_x", Support.UNSUPPORTED),
        ("0.9", Support.UNSUPPORTED),
    ],
)
def test_support_of_every_kind_of_version(text: str, support: Support) -> None:
    version = v(text)
    assert support_of(version) is support
    if support is Support.UNSUPPORTED:
        with pytest.raises(UnsupportedInput, match=rf"Flink {version} is not supported: .* 1\.13 to 2\.3") as info:
            line_of(version)
        assert not_exact_reason(version) == str(info.value)
    else:
        assert line_of(version) is (
            NEWEST if support is Support.UNRELEASED or version.minor is None else line_of(v(text))
        )
    assert bool(line_notices(version)) is (support is Support.UNRELEASED)
    assert (not_exact_reason(version) is None) is (support is Support.EXACT)


def test_v2_x_is_the_newest_2_x_line() -> None:
    assert line_of(v("v2_x")) is NEWEST
    config = {P: "4g", "external-resources": "[gpu]", "external-resource.gpu.amount": "1"}
    assert (
        resolve_taskmanager(config, v("v2_x")).dynamic_configs == resolve_taskmanager(config, v("2.3")).dynamic_configs
    )
    assert resolve_taskmanager(config, v("v2_x")).warnings == ()


def test_an_unreleased_line_is_resolved_with_the_newest_rules_and_says_so() -> None:
    config = {"jobmanager.memory.process.size": "1600m"}
    unreleased, newest = resolve_jobmanager(config, v("2.4")), resolve_jobmanager(config, v("2.3"))
    assert unreleased.jvm_args == newest.jvm_args and unreleased.dynamic_configs == newest.dynamic_configs
    assert [n.message for n in unreleased.warnings] == [
        "Flink 2.4 is newer than the newest line flinkmem has verified (2.3); "
        "it is resolved with the rules of Flink 2.3"
    ]


def test_an_unsupported_line_is_refused_by_the_engine() -> None:
    for resolve in (resolve_jobmanager, resolve_taskmanager):
        with pytest.raises(UnsupportedInput, match=r"Flink 1\.12 is not supported"):
            resolve({"jobmanager.memory.process.size": "1g", P: "2g"}, v("1.12"))


# --- the rules, with values measured on each line ---------------------------------------------


def tm(config: Mapping[str, str], line: str, mode: DeploymentMode = NATIVE) -> Any:
    return resolve_taskmanager(config, v(line), mode)


@pytest.mark.parametrize("line", ALL_LINES)
def test_r1_network_max_default(line: str) -> None:
    # process.size 16g, standalone: the network share is capped at 1 GiB up to 1.16.
    expected = 1073741824 if v(line) < v("1.17") else 1583769214
    assert tm({P: "16g"}, line, STANDALONE).network == expected


@pytest.mark.parametrize("line", ALL_LINES)
def test_r2_native_pods_keep_or_drop_the_totals(line: str) -> None:
    early = v(line) < v("1.18")
    # process.size 3g with overhead fraction 0.25: P and OVH of the pod.
    pod = tm({P: "3g", "taskmanager.memory.jvm-overhead.fraction": "0.25"}, line)
    assert (pod.total_process, pod.overhead) == ((3221225472, 805306368) if early else (3221225471, 805306367))
    # process.size 2600m with flink.size 2g, and the fine-grained switch.
    kept, dropped = (2726297600, 310378496), (2684354564, 268435460)
    both = {P: "2600m", F: "2g"}
    assert (tm(both, line).total_process, tm(both, line).overhead) == (kept if early else dropped)
    on = tm({**both, FG: "true"}, line)
    assert (on.total_process, on.overhead) == dropped
    off = tm({**both, FG: "false"}, line)
    assert (off.total_process, off.overhead) == (kept if v(line) < v("1.19") else dropped)
    # 1.13 only: the declarative resource management switch, off, turns fine-grained off too.
    declarative_off = tm({**both, FG: "true", DECLARATIVE: "false"}, line)
    assert declarative_off.total_process == (kept[0] if line == "1.13" else dropped[0])
    # A switch that is no Boolean fails every native TaskManager on 1.13 to 1.18.
    if v(line) < v("1.19"):
        with pytest.raises(FlinkMemError, match=r"cluster\.fine-grained-resource-management\.enabled"):
            tm({P: "2g", FG: "yes"}, line)
        assert tm({P: "2g", FG: "yes"}, line, STANDALONE).total_process == 2147483648
    else:
        assert tm({P: "2g", FG: "yes"}, line).total_process == 2147483648


@pytest.mark.parametrize("line", ALL_LINES)
def test_r3_cpu_decimals(line: str) -> None:
    full = v(line) < v("1.14")
    assert tm({P: "4g", "taskmanager.cpu.cores": "0.123456789"}, line, STANDALONE).cpu_cores == (
        0.123456789 if full else 0.12345678
    )
    tiny = {P: "4g", "taskmanager.cpu.cores": "0.000000001"}
    if full:
        memory = tm(tiny, line)
        assert memory.cpu_cores == 1e-9 and "-D taskmanager.cpu.cores=1.0E-9" in memory.dynamic_configs
        assert memory.flink_pod_memory_mib == 4096
    else:
        with pytest.raises(FlinkMemError, match="cuts to 0 CPU cores"):
            tm(tiny, line)


@pytest.mark.parametrize("line", ALL_LINES)
def test_r4_the_kubernetes_cpu_key(line: str) -> None:
    assert tm({P: "4g", "kubernetes.taskmanager.cpu.amount": "2.5"}, line).cpu_cores == (
        1.0 if v(line) < v("1.17") else 2.5
    )
    assert tm({P: "4g", "kubernetes.taskmanager.cpu": "2.5"}, line).cpu_cores == 2.5
    # Before 1.17 the new key is unknown to Flink: never read, so any text is fine.
    if v(line) < v("1.17"):
        assert tm({P: "4g", "kubernetes.taskmanager.cpu.amount": "abc"}, line).cpu_cores == 1.0


@pytest.mark.parametrize("line", ALL_LINES)
def test_r5_r6_external_resources(line: str) -> None:
    amounts = {"external-resource.gpu.amount": "1", "external-resource.fpga.amount": "2"}
    listed = tm({P: "4g", "external-resources": "gpu;fpga", **amounts}, line, STANDALONE).dynamic_configs
    quoted = v(line) >= v("1.15")
    assert ('-D external-resources="fpga;gpu"' if quoted else "-D external-resources=fpga;gpu") in listed
    yaml_list = tm({P: "4g", "external-resources": "[gpu, fpga]", **amounts}, line, STANDALONE)
    assert dict(yaml_list.external_resources) == ({} if v(line) < v("1.19") else {"fpga": 2, "gpu": 1})
    # 1.19 and 1.20 read a YAML list only when the configuration came from config.yaml.
    from_legacy_file = resolve_taskmanager(
        {P: "4g", "external-resources": "[gpu, fpga]", **amounts}, v(line), STANDALONE, None, FLINK_CONF_YAML
    )
    assert dict(from_legacy_file.external_resources) == ({} if v(line) < v("2.0") else {"fpga": 2, "gpu": 1})


@pytest.mark.parametrize("line", ALL_LINES)
def test_r8_limit_factors_exist_from_1_15(line: str) -> None:
    memory = resolve_jobmanager({"jobmanager.memory.process.size": "1600m"}, v(line))
    for factor in ("0.5", "2", "abc"):
        config = {"kubernetes.jobmanager.memory.limit-factor": factor}
        if v(line) < v("1.15"):
            container = container_memory(memory.total_process, config, JOBMANAGER, line=line_of(v(line)))
            assert (container.flink_request_mib, container.flink_limit_mib) == (1600, 1600)
            assert container.limit == container.request
        elif factor == "2":
            container = container_memory(memory.total_process, config, JOBMANAGER, line=line_of(v(line)))
            assert (container.flink_request_mib, container.flink_limit_mib) == (1600, 3200)
        else:
            with pytest.raises(FlinkMemError):
                container_memory(memory.total_process, config, JOBMANAGER, line=line_of(v(line)))


@pytest.mark.parametrize("line", ["1.13", "1.14", "1.15", "2.3"])
def test_r8_validation_refuses_a_factor_below_one_only_where_it_exists(line: str) -> None:
    config = {"taskmanager.memory.process.size": "2g", "kubernetes.taskmanager.memory.limit-factor": "0.5"}
    result = validate_role(FlinkSource("file", "f", "", config, v(line), NATIVE), TASKMANAGER)
    if v(line) < v("1.15"):
        assert result.valid and result.container is not None
        assert (result.container.request, result.container.limit) == ("2048Mi", "2048Mi")
    else:
        assert [c.code for c in result.conflicts] == ["limit-factor-below-one"]


@pytest.mark.parametrize("line", ALL_LINES)
def test_r12_legacy_heap_options_through_1_20(line: str) -> None:
    memory = resolve_jobmanager({"jobmanager.heap.size": "1g"}, v(line), STANDALONE) if v(line) < v("2.0") else None
    if memory is not None:
        assert memory.jvm_heap == 1 << 30
    else:
        with pytest.raises(FlinkMemError, match="No JobManager memory size is configured"):
            resolve_jobmanager({"jobmanager.heap.size": "1g"}, v(line), STANDALONE)


def test_r15_java_options_of_each_line() -> None:
    config = {
        "env.java.opts": "-Xmx1g",
        "env.java.opts.all": "-Xmx2g",
        "env.java.default-opts.all": "-Xms1g",
        "env.java.default-opts.jobmanager": "-Xmx3g",
        "env.java.opts.jobmanager": "-Xmx4g",
    }

    def keys(line: str) -> list[str]:
        return [name for name, _ in java_opts_sources(config, {}, JOBMANAGER, line_of(v(line)))]

    assert keys("1.16") == ["env.java.opts", "env.java.opts.jobmanager"]
    assert keys("1.18") == ["env.java.opts.all", "env.java.opts.jobmanager"]
    assert keys("1.19") == [
        "env.java.default-opts.all",
        "env.java.opts.all",
        "env.java.default-opts.jobmanager",
        "env.java.opts.jobmanager",
    ]
    without_all = {key: value for key, value in config.items() if key != "env.java.opts.all"}
    assert [name for name, _ in java_opts_sources(without_all, {}, TASKMANAGER, line_of(v("1.17")))] == [
        "env.java.opts"
    ]


# --- the batch, the CLI and the cluster ---------------------------------------------------------


def test_batch_refuses_an_unsupported_line_as_input_and_warns_about_an_unreleased_one() -> None:
    config = {"jobmanager.memory.process.size": "1600m"}
    refused = resolve_record({"id": 1, "config": config, "flinkVersion": "1.12"}, NEWEST.version)
    assert refused["inputError"] is True and "Flink 1.12 is not supported" in refused["error"]
    answered = resolve_record({"id": 2, "config": config, "flinkVersion": "v2_4"}, NEWEST.version)
    assert answered["valid"] is True and answered["warnings"][0].startswith("Flink 2.4 is newer")
    # A refusal by the newest line's rules keeps the warning.
    invalid = resolve_record({"id": 3, "config": {}, "flinkVersion": "2.4", "role": "taskmanager"}, NEWEST.version)
    assert invalid["valid"] is False and invalid["warnings"][0].startswith("Flink 2.4 is newer")
    # The default version of a batch (resolve --batch --flink-version) works alike.
    line = json.dumps({"id": 4, "config": config}).encode()
    assert json.loads(resolve_line_in_python(line, v("2.5")))["warnings"][0].startswith("Flink 2.5 is newer")


@pytest.mark.parametrize("version", ["1.12", "1.12.5", "v1_11", "3.0", "1.21"])
def test_cli_refuses_unsupported_lines_with_exit_2(version: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["resolve", "-D", "jobmanager.memory.process.size=1600m", "--flink-version", version],
        ["resolve", "--batch", "--flink-version", version],
    ):
        assert main(argv) == 2
        _, err = capsys.readouterr()
        assert err.startswith("flinkmem: Flink ") and "is not supported" in err and "1.13 to 2.3" in err


def test_cli_resolves_an_unreleased_line_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["resolve", "-D", "jobmanager.memory.process.size=1600m", "--flink-version", "2.4", "-o", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["flinkVersion"] == "2.4"
    assert any(w.startswith("JobManager: Flink 2.4 is newer") for w in data["warnings"])


def test_cli_check_reports_a_flinkdeployment_of_an_unsupported_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(json.dumps(flinkdeployment(version="v1_12")))
    assert main(["check", str(old)]) == 2
    out, err = capsys.readouterr()
    assert "Flink 1.12 is not supported" in out and "not checked" in err
    future = tmp_path / "future.yaml"
    future.write_text(json.dumps(flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g", version="v2_4")))
    assert main(["check", str(future)]) == 0
    out, _ = capsys.readouterr()
    assert "flinkmem cannot know what Flink 2.4 refuses" in out


def test_a_flinkdeployment_of_an_unreleased_line_is_never_refused() -> None:
    conflict = flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g", version="v2_4")
    decision = review_flinkdeployment("CREATE", conflict, None, ValidationMode.ENFORCE, "flink-main-container")
    assert decision.allowed and decision.outcome is Outcome.ALLOWED
    text = " ".join(decision.warnings)
    assert "Flink 2.4 is newer than the newest line flinkmem has verified (2.3)" in text
    assert "flinkmem cannot know what Flink 2.4 refuses; by the rules of Flink 2.3: JobManager:" in text
    # The line is named once for the deployment, not once per role.
    assert text.count("is newer than the newest line") == 1


def test_a_flinkdeployment_of_an_unsupported_line_is_admitted_unchecked() -> None:
    for obj in (
        flinkdeployment(version="v1_12"),
        flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g", version="v1_11"),
        flinkdeployment(memory="lots", version="v3_0"),  # a spec flinkmem cannot read is not checked either
    ):
        decision = review_flinkdeployment("CREATE", obj, None, ValidationMode.ENFORCE, "flink-main-container")
        assert decision.allowed, decision.message
        assert any("flinkmem does not check this source" in w for w in decision.warnings)
    # A version text that is no Flink version at all stays a refusal.
    nonsense = flinkdeployment(version="latest")
    decision = review_flinkdeployment("CREATE", nonsense, None, ValidationMode.ENFORCE, "flink-main-container")
    assert not decision.allowed and "spec.flinkVersion" in decision.message


def test_the_controller_records_lines_it_is_not_exact_for() -> None:
    unsupported = reconcile_deployment(flinkdeployment(version="v1_12"), "flink-main-container")
    assert (unsupported.event_type, unsupported.reason) == ("Warning", "MemoryNotApplied")
    assert "Flink 1.12 is not supported" in unsupported.message
    unreleased = reconcile_deployment(flinkdeployment(version="v2_4"), "flink-main-container")
    assert unreleased.reason == "MemoryResolved" and "Flink 2.4 is newer" in unreleased.message


@pytest.mark.parametrize(
    ("version", "named"), [("v2_4", "Flink 2.4 is newer"), ("v1_12", "Flink 1.12 is not supported")]
)
def test_pods_of_lines_flinkmem_is_not_exact_for_are_left_as_flink_builds_them(version: str, named: str) -> None:
    h = Harness(Lookup(flinkdeployment(version=version)))
    pod = jobmanager_pod()
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}]
    response = h.response("mutate-flink-pod", review(PODS, pod))
    assert response["allowed"] is True and "patch" not in response
    warnings = " ".join(response["warnings"])
    assert "left this JobManager pod unchanged" in warnings and named in warnings
    assert [reason for _, _, reason, _ in h.sink.posted] == ["MemoryNotApplied"]


def test_a_pod_of_an_unsupported_line_with_a_malformed_spec_names_the_line() -> None:
    h = Harness(Lookup(flinkdeployment(memory="lots", version="v1_12")))
    response = h.response("mutate-flink-pod", review(PODS, jobmanager_pod()))
    assert "patch" not in response and "Flink 1.12 is not supported" in " ".join(response["warnings"])


def test_a_webhook_review_of_an_unsupported_flinkdeployment_is_admitted_with_its_warning() -> None:
    answer = Harness().response("validate-flinkdeployment", review(FD, flinkdeployment(version="v1_12")))
    assert answer["allowed"] is True and "flinkmem does not check this source" in " ".join(answer["warnings"])
