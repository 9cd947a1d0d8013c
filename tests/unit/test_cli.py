"""The `flinkmem` command line: `resolve` (flags, config files, manifests, batch), `check`, exit codes
0 (valid) / 1 (invalid configuration) / 2 (unusable input), one-line reasons on stderr."""

from __future__ import annotations

import importlib.metadata
import io
import json
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkmem.cli import main

P = "jobmanager.memory.process.size"
C01_ARGS = "-Xmx1073741824 -Xms1073741824 -XX:MaxMetaspaceSize=268435456"
HEAP_1600M = 1073741824
HEAP_2G = 1530082096
HEAP_1G = 469762048

Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: Capture, *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run(capsys, *argv, "-o", "json")
    data = json.loads(out)
    assert isinstance(data, dict)
    return code, data, err


def assert_one_line_reason(err: str) -> None:
    assert err.startswith("flinkmem: ")
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def usage_exit(capsys: Capture, *argv: str) -> str:
    """Runs a command that argparse refuses; returns stderr."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert_one_line_reason(err)
    return err


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def manifest(name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "metadata": metadata, "spec": spec}


# ---------------------------------------------------------------------------------------------
# resolve with -D


def test_resolve_json(capsys: Capture) -> None:
    code, data, err = run_json(capsys, "resolve", "-D", f"{P}=1600m")
    assert code == 0
    assert err == ""
    assert data["valid"] is True
    assert data["jvmArgs"] == C01_ARGS
    assert data["jvmHeap"] == HEAP_1600M
    assert data["totalProcessMemory"] == 1677721600
    assert data["flinkVersion"] == "2.3"
    assert data["mode"] == "native"
    assert data["container"]["request"] == "1600Mi"
    assert data["container"]["flinkRequest"] == "1600Mi"
    # Flink logs that the fraction-derived overhead (167772162 B) was raised to the 192m minimum.
    assert [(n["code"], n["level"]) for n in data["notices"]] == [("overhead-raised", "info")]
    assert data["inputNotes"] == []


def test_resolve_yaml(capsys: Capture) -> None:
    code, out, _ = run(capsys, "resolve", "-D", f"{P}=2g", "-o", "yaml")
    assert code == 0
    data = yaml.safe_load(out)
    assert data["valid"] is True
    assert data["jvmHeap"] == HEAP_2G
    assert data["jvmOverhead"] == 214748368


def test_resolve_table(capsys: Capture) -> None:
    code, out, err = run(capsys, "resolve", "-D", f"{P}=1600m")
    assert code == 0
    assert err == ""
    assert f"JVM flags:        {C01_ARGS}" in out.splitlines()
    assert "Container memory: request 1600Mi, limit 1600Mi" in out


def test_dynamic_properties_attached_and_last_wins(capsys: Capture) -> None:
    code, data, _ = run_json(capsys, "resolve", f"-D{P}=1600m", "-D", f"{P}=2g")
    assert code == 0
    assert data["jvmHeap"] == HEAP_2G


def test_flink_version_and_mode_flags(capsys: Capture) -> None:
    code, data, _ = run_json(
        capsys, "resolve", "-D", "jobmanager.heap.size=1g", "--flink-version", "1.20", "--mode", "standalone"
    )
    assert code == 0
    assert data["jvmHeap"] == 1 << 30
    assert data["flinkVersion"] == "1.20"
    assert data["mode"] == "standalone"


def test_invalid_configuration_exits_1_with_one_line(capsys: Capture) -> None:
    code, out, err = run(capsys, "resolve", "-D", f"{P}=100m")
    assert code == 1
    assert out == ""
    assert_one_line_reason(err)
    assert err.startswith("flinkmem: invalid configuration: ")


def test_invalid_configuration_json(capsys: Capture) -> None:
    code, data, err = run_json(capsys, "resolve", "-D", f"{P}=100m")
    assert code == 1
    assert data["valid"] is False
    assert data["rule"] == "metaspace-and-overhead-exceed-process"
    assert data["error"]
    assert P in [o["key"] for o in data["options"]]
    assert_one_line_reason(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["resolve", "-D", f"{P}="],  # empty value counts as configured
        ["resolve", "-D", f"{P}=1.5g"],
        ["resolve"],  # nothing to size from
        ["resolve", "-D", "jobmanager.heap.size=1g"],  # 2.x ignores the legacy key
        ["resolve", "-D", f"{P}=1600m", "-D", "kubernetes.jobmanager.memory.limit-factor=0.5"],
    ],
)
def test_other_invalid_configurations(capsys: Capture, argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert_one_line_reason(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["resolve", "-D", "no-equals-sign"],
        ["resolve", "-D", "=2g"],
        ["resolve", "-D", f"{P}=1600m", "--flink-version", "0.9"],
        ["resolve", "-D", f"{P}=1600m", "--flink-version", "banana"],
    ],
)
def test_unusable_input_exits_2(capsys: Capture, argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert_one_line_reason(err)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["explode"],
        ["resolve", "-o", "xml"],
        ["resolve", "--mode", "hybrid"],
        ["resolve", "--no-such-flag"],
        ["check"],
    ],
)
def test_bad_flags_exit_2(capsys: Capture, argv: list[str]) -> None:
    usage_exit(capsys, *argv)


def test_version_flag(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    # The installed distribution's version, which pyproject.toml reads from flinkmem.__version__.
    assert capsys.readouterr().out.strip() == f"flinkmem {importlib.metadata.version('flinkmem')}"


# ---------------------------------------------------------------------------------------------
# resolve --config-file


def test_config_yaml_nested_and_typed(capsys: Capture, tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        "jobmanager:\n  memory:\n    process:\n      size: 2g\n    enable-jvm-direct-memory-limit: TRUE\n",
    )
    code, data, _ = run_json(capsys, "resolve", "--config-file", path)
    assert code == 0
    assert data["jvmHeap"] == HEAP_2G
    assert data["jvmDirectMemory"] == 134217728


def test_config_yaml_int_is_bytes(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", f"{P}: 1677721600\n")
    code, data, _ = run_json(capsys, "resolve", "--config-file", path)
    assert code == 0
    assert data["jvmHeap"] == HEAP_1600M


def test_config_yaml_plain_scalars_pyyaml_cannot_construct(capsys: Capture, tmp_path: Path) -> None:
    # "=" is an ordinary string to a YAML 1.2 Core-schema loader such as Flink's; PyYAML's safe
    # loader has no constructor for its YAML 1.1 "value" tag.
    path = write(tmp_path / "config.yaml", f"{P}: 2g\nsome.option: =\n")
    code, data, err = run_json(capsys, "resolve", "--config-file", path)
    assert (code, err) == (0, "")
    assert data["jvmHeap"] == HEAP_2G


def test_dynamic_property_overrides_the_file(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", f"{P}: 1600m\n")
    code, data, _ = run_json(capsys, "resolve", "--config-file", path, "-D", f"{P}=2g")  # C22
    assert code == 0
    assert data["jvmHeap"] == HEAP_2G


@pytest.mark.parametrize(
    "text",
    [
        f"{P}:\n",  # null value (C56)
        f"{P}: 1600m\n{P}: 2g\n",  # duplicate key (C67)
        "key: [unclosed\n",
    ],
)
def test_config_yaml_flink_cannot_load_exits_2(capsys: Capture, tmp_path: Path, text: str) -> None:
    code, _, err = run(capsys, "resolve", "--config-file", write(tmp_path / "config.yaml", text))
    assert code == 2
    assert_one_line_reason(err)


def test_missing_or_unreadable_file_exits_2(capsys: Capture, tmp_path: Path) -> None:
    code, _, err = run(capsys, "resolve", "--config-file", str(tmp_path / "absent.yaml"))
    assert code == 2
    assert_one_line_reason(err)
    binary = tmp_path / "config.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = run(capsys, "resolve", "--config-file", str(binary))
    assert code == 2
    assert_one_line_reason(err)
    code, _, err = run(capsys, "resolve", "--config-file", str(tmp_path))  # a directory
    assert code == 2
    assert_one_line_reason(err)


def test_flink_conf_yaml_uses_the_legacy_parser(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path / "flink-conf.yaml", f"{P}:    2g   # c\n{P}: 1g\nempty.value:\n")  # L10
    code, data, _ = run_json(capsys, "resolve", "--config-file", path)
    assert code == 0
    assert data["flinkVersion"] == "1.20"
    assert data["jvmHeap"] == HEAP_1G
    assert len(data["inputNotes"]) == 2
    assert "line 3" in data["inputNotes"][0]
    assert "assuming 1.20" in data["inputNotes"][1]


def test_flink_conf_yaml_keeps_quotes(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path / "flink-conf.yaml", f'{P}: "1600m"\n')  # L11
    code, _, err = run(capsys, "resolve", "--config-file", path)
    assert code == 1
    assert_one_line_reason(err)


def test_flink_conf_yaml_legacy_heap_standalone(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path / "flink-conf.yaml", "jobmanager.heap.size: 1g\n")
    code, data, _ = run_json(capsys, "resolve", "--config-file", path, "--mode", "standalone")
    assert code == 0
    assert data["jvmHeap"] == 1 << 30


def test_flink_conf_yaml_refused_for_2x(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path / "flink-conf.yaml", f"{P}: 1600m\n")  # L13
    code, _, err = run(capsys, "resolve", "--config-file", path, "--flink-version", "2.3")
    assert code == 2
    assert_one_line_reason(err)


def test_flink_conf_yaml_with_an_unsupported_version_exits_2(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path / "flink-conf.yaml", f"{P}: 1600m\n")
    code, _, err = run(capsys, "resolve", "--config-file", path, "--flink-version", "9.9")
    assert code == 2
    assert_one_line_reason(err)


@pytest.mark.parametrize(
    "extra_line",
    [
        "env.java.opts.all: -Dmessage=a: b",  # a second ": " inside the value
        "\tsecurity.ssl.enabled: false",  # a tab before the key, trimmed by Flink
        "metrics.reporters: [prom",  # not YAML, but a plain value to Flink
    ],
)
def test_flink_conf_yaml_lines_flink_accepts_but_yaml_does_not(
    capsys: Capture, tmp_path: Path, extra_line: str
) -> None:
    path = write(tmp_path / "flink-conf.yaml", f"{P}: 2g\n{extra_line}\n")
    code, data, err = run_json(capsys, "resolve", "--config-file", path)
    assert (code, err) == (0, "")
    assert data["jvmHeap"] == HEAP_2G


def test_flinkdeployment_manifest(capsys: Capture, tmp_path: Path) -> None:
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}},
        manifest(
            "demo",
            {
                "flinkVersion": "v1_20",
                "mode": "standalone",
                "flinkConfiguration": {P: "1600m"},
                "jobManager": {"resource": {"memory": "2Gi", "cpu": 1}},
            },
        ),
    ]
    path = write(tmp_path / "deploy.yaml", yaml.safe_dump_all(docs))
    code, data, _ = run_json(capsys, "resolve", "--config-file", path)
    assert code == 0
    assert data["jvmHeap"] == HEAP_2G  # resource.memory replaced the 1600m
    assert data["flinkVersion"] == "1.20"
    assert data["mode"] == "standalone"
    assert any(P in note for note in data["inputNotes"])


def test_flinkdeployment_manifest_legacy_env_from_template(capsys: Capture, tmp_path: Path) -> None:
    template = {
        "spec": {"containers": [{"name": "flink-main-container", "env": [{"name": "FLINK_JM_HEAP", "value": "1g"}]}]}
    }
    spec = {"flinkVersion": "v1_20", "mode": "standalone", "flinkConfiguration": {P: "1600m"}, "podTemplate": template}
    path = write(tmp_path / "deploy.yaml", yaml.safe_dump(manifest("demo", spec)))
    code, data, _ = run_json(capsys, "resolve", "--config-file", path)
    assert code == 0
    assert data["jvmHeap"] == 1 << 30  # L04


def test_flinkdeployment_in_a_list(capsys: Capture, tmp_path: Path) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [manifest("a", {"flinkVersion": "v2_1", "flinkConfiguration": {P: "2g"}})],
    }
    code, data, _ = run_json(capsys, "resolve", "--config-file", write(tmp_path / "list.yaml", yaml.safe_dump(doc)))
    assert code == 0
    assert data["jvmHeap"] == HEAP_2G


def test_two_flinkdeployments_exit_2(capsys: Capture, tmp_path: Path) -> None:
    spec = {"flinkVersion": "v2_1", "flinkConfiguration": {P: "2g"}}
    path = write(tmp_path / "two.yaml", yaml.safe_dump_all([manifest("a", spec), manifest("b", spec)]))
    code, _, err = run(capsys, "resolve", "--config-file", path)
    assert code == 2
    assert_one_line_reason(err)


def test_malformed_flinkdeployment_exits_2_naming_the_field(capsys: Capture, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", yaml.safe_dump(manifest("a", {"flinkConfiguration": {P: "2g"}})))
    code, _, err = run(capsys, "resolve", "--config-file", path)
    assert code == 2
    assert_one_line_reason(err)
    assert "spec.flinkVersion" in err


# ---------------------------------------------------------------------------------------------
# check


def _check_file(tmp_path: Path, *docs: dict[str, Any]) -> str:
    return write(tmp_path / "deployments.yaml", yaml.safe_dump_all(list(docs)))


TM = "taskmanager.memory.process.size"
GOOD = {"flinkVersion": "v2_1", "flinkConfiguration": {P: "1600m", TM: "1728m"}}
BAD = {"flinkVersion": "v2_1", "flinkConfiguration": {P: "100m", TM: "1728m"}}
# Flink's numbers for a 1728m TaskManager (spec vector V01): heap 536870902 bytes, pod 1728Mi.
TM_1728M = "TaskManager: heap 536870902 B, total process 1811939328 B, container 1728Mi/1728Mi"


def test_check_all_valid(capsys: Capture, tmp_path: Path) -> None:
    path = _check_file(tmp_path, manifest("good", GOOD, "team-a"))
    code, out, err = run(capsys, "check", path)
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines == [
        f"✔ {path}: team-a/good: JobManager: heap 1073741824 B, total process 1677721600 B, container 1600Mi/1600Mi",
        f"✔ {path}: team-a/good: {TM_1728M}",
    ]


def test_check_reports_every_deployment_and_exits_1(capsys: Capture, tmp_path: Path) -> None:
    path = _check_file(tmp_path, manifest("good", GOOD), manifest("bad", BAD), manifest("good2", GOOD))
    code, out, _ = run(capsys, "check", path)
    assert code == 1
    lines = [line for line in out.splitlines() if not line.startswith("  ")]
    assert [line[0] for line in lines] == ["✔", "✔", "✘", "✔", "✔", "✔"]
    assert lines[2].startswith(f"✘ {path}: bad: JobManager: ")
    assert lines[3] == f"✔ {path}: bad: {TM_1728M}"


def test_check_several_files_and_warnings(capsys: Capture, tmp_path: Path) -> None:
    first = write(tmp_path / "a.yaml", yaml.safe_dump(manifest("a", GOOD)))
    warned = {"flinkVersion": "v2_1", "flinkConfiguration": {"jobmanager.memory.heap.size": "50m", TM: "2g"}}
    second = write(tmp_path / "b.yaml", yaml.safe_dump(manifest("b", warned)))
    code, out, _ = run(capsys, "check", first, second)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"✔ {first}: a: JobManager:")
    assert lines[1].startswith(f"✔ {first}: a: TaskManager:")
    assert lines[2].startswith(f"✔ {second}: b: JobManager:")
    assert lines[3].startswith(f"✔ {second}: b: TaskManager:")
    assert any(line.startswith("  warning: JobManager: JVM heap") for line in lines[4:])


def test_check_template_limit_is_a_warning(capsys: Capture, tmp_path: Path) -> None:
    template = {"spec": {"containers": [{"name": "flink-main-container", "resources": {"limits": {"memory": "1Gi"}}}]}}
    path = _check_file(tmp_path, manifest("tight", {**GOOD, "podTemplate": template}))
    code, out, _ = run(capsys, "check", path)
    assert code == 0
    assert out.startswith("✔ ")
    assert "  warning: JobManager: the pod template's memory limit 1Gi is not used" in out


def test_check_names_the_rule_that_refused(capsys: Capture, tmp_path: Path) -> None:
    path = _check_file(tmp_path, manifest("bad", BAD))
    code, out, _ = run(capsys, "check", path)
    assert code == 1
    assert out.startswith(f"✘ {path}: bad: JobManager: ")
    assert "(rule: metaspace-and-overhead-exceed-process)" in out


def test_check_unreadable_file_exits_2(capsys: Capture, tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "absent.yaml"))
    assert code == 2
    assert_one_line_reason(err)
    code, _, err = run(capsys, "check", write(tmp_path / "bad.yaml", "a: [unclosed\n"))
    assert code == 2
    assert_one_line_reason(err)


# ---------------------------------------------------------------------------------------------
# resolve --batch


def test_batch(capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"id": 1, "config": {"jobmanager.memory.process.size": "1600m"}}\n\nnot json\n{"id": 2, "config": {}}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = run(capsys, "resolve", "--batch")
    assert code == 0
    assert err == ""
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in results] == [1, None, None, 2]
    assert results[0]["jvmArgs"] == C01_ARGS
    assert results[3]["rule"] == "no-sizing-option"


def test_batch_default_version(capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"id": 1, "config": {"jobmanager.heap.size": "1g"}, "mode": "standalone"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(capsys, "resolve", "--batch", "--flink-version", "1.20")
    assert code == 0
    assert json.loads(out)["jvmHeap"] == 1 << 30


@pytest.mark.parametrize("extra", [["-D", f"{P}=1g"], ["--config-file", "x.yaml"], ["--flink-version", "0.1"]])
def test_batch_refuses_other_inputs(capsys: Capture, extra: list[str]) -> None:
    code, out, err = run(capsys, "resolve", "--batch", *extra)
    assert code == 2
    assert out == ""
    assert_one_line_reason(err)


# ---------------------------------------------------------------------------------------------
# the installed console script


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "flinkmem"
    assert script.exists(), "the flinkmem console script is not installed in this environment"

    ok = subprocess.run(
        [str(script), "resolve", "-D", f"{P}=1600m", "-o", "json"], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["jvmArgs"] == C01_ARGS

    invalid = subprocess.run([str(script), "resolve", "-D", f"{P}=100m"], capture_output=True, text=True, timeout=60)
    assert invalid.returncode == 1
    assert_one_line_reason(invalid.stderr)

    usage = subprocess.run([str(script), "resolve", "-D", "nonsense"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2
    assert_one_line_reason(usage.stderr)

    batch_input = b'{"id": "x", "config": {"jobmanager.memory.process.size": "2g"}}\n\xff\n'
    batch = subprocess.run([str(script), "resolve", "--batch"], input=batch_input, capture_output=True, timeout=60)
    assert batch.returncode == 0
    lines = batch.stdout.decode().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["jvmHeap"] == HEAP_2G
    assert json.loads(lines[1])["inputError"] is True

    check_file = write(tmp_path / "d.yaml", yaml.safe_dump_all([manifest("good", GOOD), manifest("bad", BAD)]))
    check = subprocess.run([str(script), "check", check_file], capture_output=True, text=True, timeout=60)
    assert check.returncode == 1
    assert [line[0] for line in check.stdout.splitlines() if not line.startswith("  ")] == ["✔", "✔", "✘", "✔"]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_batch_answers_a_waiting_program_line_by_line(jobs: str) -> None:
    # A program that writes one line and waits for its answer before writing the next must never
    # wait forever, with worker processes or without.
    script = Path(sys.executable).parent / "flinkmem"
    process = subprocess.Popen(
        [str(script), "resolve", "--batch", "--jobs", jobs], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        for n, size in enumerate(["2g", "100m", "2g"]):
            process.stdin.write(json.dumps({"id": n, "config": {P: size}}).encode() + b"\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 30)
            assert ready, f"no answer to line {n} within 30 s"
            answer = json.loads(process.stdout.readline())
            assert answer["id"] == n
            assert answer["valid"] is (size == "2g")
        process.stdin.close()
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == b""
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("jobs", ["0", "-3", "two"])
def test_batch_jobs_must_be_a_positive_number(capsys: Capture, jobs: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["resolve", "--batch", "--jobs", jobs])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert out == ""
    assert_one_line_reason(err)
    assert "--jobs" in err


def test_jobs_without_batch_is_refused(capsys: Capture) -> None:
    code, _, err = run(capsys, "resolve", "-D", f"{P}=1g", "--jobs", "2")
    assert code == 2
    assert_one_line_reason(err)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--controller-qps", "-1"], "--controller-qps"),
        (["--controller-qps", "nan"], "--controller-qps"),
        (["--controller-burst", "0"], "--controller-burst"),
    ],
)
def test_serve_refuses_bad_throttling(capsys: Capture, tmp_path: Path, argv: list[str], named: str) -> None:
    code, _, err = run(capsys, "serve", "--self-signed-dir", str(tmp_path), *argv)
    assert code == 2
    assert_one_line_reason(err)
    assert named in err


def test_a_bad_numeric_environment_value_is_a_usage_error_of_serve_only(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLINKMEM_WEBHOOK_PORT", "not-a-port")
    monkeypatch.setenv("FLINKMEM_CONTROLLER_QPS", "fast")
    code, out, _ = run_json(capsys, "resolve", "-D", f"{P}=1600m")
    assert code == 0 and out["jvmArgs"] == C01_ARGS
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--self-signed-dir", str(tmp_path)])
    _, err = capsys.readouterr()
    assert exited.value.code == 2
    assert_one_line_reason(err)
    assert "--webhook-port" in err or "--controller-qps" in err


# ---------------------------------------------------------------------------------------------
# native-client users: their Flink configuration file, checked with the webhook's rules


def test_resolve_reports_what_the_webhook_would_refuse(capsys: Capture, tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", f"{P}: 2g\nenv.java.opts.jobmanager: -Xmx4g\n")
    code, out, err = run(capsys, "resolve", "--config-file", config)
    assert code == 1
    assert "Error (java-opts-heap-conflict): JobManager: env.java.opts.jobmanager sets -Xmx4g" in out
    assert_one_line_reason(err)
    code, data, _ = run_json(capsys, "resolve", "--config-file", config)
    assert code == 1 and data["valid"] is False
    assert [c["code"] for c in data["conflicts"]] == ["java-opts-heap-conflict"]


def test_check_accepts_a_config_yaml(capsys: Capture, tmp_path: Path) -> None:
    text = "jobmanager:\n  memory:\n    process.size: 2g\ntaskmanager.memory.process.size: 1728m\n"
    config = write(tmp_path / "config.yaml", text)
    code, out, err = run(capsys, "check", config)
    assert code == 0, out + err
    assert (
        out.splitlines()[0]
        == f"✔ {config}: JobManager: heap 1530082096 B, total process 2147483648 B, container 2048Mi/2048Mi"
    )
    assert "assuming 2.3" in out  # the file does not name its version


def test_check_refuses_a_config_file_like_the_webhook(capsys: Capture, tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", f"{P}: 2g\nenv.java.opts.jobmanager: -Xmx4g\n")
    code, out, _ = run(capsys, "check", "--flink-version", "2.3", config)
    assert code == 1
    assert out.startswith(f"✘ {config}: JobManager: env.java.opts.jobmanager sets -Xmx4g")
    assert "(rule: java-opts-heap-conflict)" in out


def test_check_reads_a_legacy_flink_conf_yaml_as_flink_1(capsys: Capture, tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    conf = write(
        tmp_path / "old" / "flink-conf.yaml", "jobmanager.heap.size: 1g\ntaskmanager.memory.process.size: 1728m\n"
    )
    code, out, _ = run(capsys, "check", conf)
    assert code == 0, out
    assert "container 1600Mi/1600Mi" in out  # the heap as the pod's start script reads it (1.x)
    assert "legacy heap option" in out


def test_check_ignores_other_kubernetes_objects(capsys: Capture, tmp_path: Path) -> None:
    other = write(tmp_path / "svc.yaml", yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {}}))
    code, _, err = run(capsys, "check", other)
    assert code == 0
    assert "no FlinkDeployment or Flink configuration file" in err


def test_check_reads_a_blue_green_deployments_template_as_the_flinkdeployment_it_deploys(
    capsys: Capture, tmp_path: Path
) -> None:
    good, bad = manifest("good", GOOD), manifest("bad", BAD)
    bluegreens = [
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkBlueGreenDeployment",
            "metadata": d["metadata"],
            "spec": {"template": {"spec": d["spec"]}},
        }
        for d in (good, bad)
    ]
    path = write(tmp_path / "bg.yaml", yaml.safe_dump_all(bluegreens))
    code, out, _ = run(capsys, "check", path)
    assert code == 1
    lines = [line for line in out.splitlines() if not line.startswith("  ")]
    assert lines[0].startswith(f"✔ {path}: good: JobManager: ")
    assert any(line.startswith(f"✘ {path}: bad: JobManager: ") for line in lines)
