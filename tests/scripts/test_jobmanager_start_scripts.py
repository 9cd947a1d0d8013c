"""Proof that a mutated JobManager pod really starts its JVM with the derived memory flags.

Runs Flink's own start scripts (`kubernetes-jobmanager.sh`, `jobmanager.sh`, shipped in the PyPI
package `apache-flink`) with the environment flinkmem gives the JobManager container, and a
stand-in `java` that records its arguments instead of starting Flink. The scripts still call the
real BashJavaUtils (real Flink) to compute their own flags; HotSpot keeps the last occurrence of
each flag, so the effective flags are the last ones on the command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkmem.podpatch import plan_pod
from flinkmem.validation import validate_deployment
from tests.support import flinkdist
from tests.unit.fixtures import flinkdeployment, jobmanager_pod

pytestmark = pytest.mark.differential

_ENTRYPOINTS = (
    "org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint",
    "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
)
_FLAG_PREFIXES = ("-Xmx", "-Xms", "-XX:MaxDirectMemorySize=", "-XX:MaxMetaspaceSize=")


def _stand_in_java(home: Path, record: Path) -> None:
    real_java = shutil.which("java")
    assert real_java, "a real java is needed for BashJavaUtils"
    real_java = os.path.realpath(real_java)
    script = home / "bin" / "java"
    script.parent.mkdir(parents=True)
    script.write_text(
        "#!/bin/bash\n"
        'for a in "$@"; do\n'
        '  case "$a" in org.apache.flink.runtime.util.bash.BashJavaUtils|-version) '
        f'exec {real_java} "$@";; esac\n'
        "done\n"
        f"printf '%s\\n' \"$@\" > {record}\n"
    )
    script.chmod(0o755)


def _effective(args: list[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The last value of each memory flag before the entrypoint class, and every occurrence in order."""
    end = next(i for i, a in enumerate(args) if a in _ENTRYPOINTS)
    last: dict[str, str] = {}
    occurrences: list[dict[str, str]] = []
    for arg in args[:end]:
        for prefix in _FLAG_PREFIXES:
            if arg.startswith(prefix):
                last[prefix] = arg[len(prefix) :]
                occurrences.append({prefix: arg[len(prefix) :]})
    return last, occurrences


def _run(tmp_path: Path, version: str, deployment: dict[str, Any], command: list[str]) -> tuple[dict[str, str], Any]:
    validation = validate_deployment(deployment)
    # Conflicts outside the engine (a stray -Xmx) still resolve; the pod patch overrides them.
    assert validation.spec is not None and validation.memory is not None, validation.reason
    plan = plan_pod(jobmanager_pod(), validation, "flink-main-container")
    assert plan is not None
    env = {e["name"]: e["value"] for e in plan.env}

    conf = tmp_path / "conf"
    conf.mkdir()
    config = dict(validation.spec.config)
    if version.startswith("1."):
        (conf / "flink-conf.yaml").write_text("".join(f"{k}: {v}\n" for k, v in config.items()))
    else:
        (conf / "config.yaml").write_text(yaml.safe_dump(config))
    record = tmp_path / "java-args.txt"
    java_home = tmp_path / "java"
    _stand_in_java(java_home, record)
    (tmp_path / "log").mkdir()
    home = flinkdist.flink_home(version)
    result = subprocess.run(
        ["bash", str(home / "bin" / command[0]), *command[1:]],
        env={
            "PATH": "/usr/bin:/bin",
            "JAVA_HOME": str(java_home),
            "FLINK_CONF_DIR": str(conf),
            "FLINK_LOG_DIR": str(tmp_path / "log"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    args = record.read_text().splitlines()
    last, occurrences = _effective(args)
    return last, (validation.memory, occurrences, args)


def _expected(memory: Any) -> dict[str, str]:
    flags = {"-Xmx": str(memory.heap), "-Xms": str(memory.heap), "-XX:MaxMetaspaceSize=": str(memory.metaspace)}
    if memory.jvm_direct_memory is not None:
        flags["-XX:MaxDirectMemorySize="] = str(memory.jvm_direct_memory)
    return flags


def test_native_kubernetes_jobmanager_on_flink_2(tmp_path: Path) -> None:
    deployment = flinkdeployment({"env.java.opts.jobmanager": "-XX:+UseG1GC -Xmx4g"}, memory="2g", version="v2_3")
    last, (memory, occurrences, args) = _run(
        tmp_path, "2.3.0", deployment, ["kubernetes-jobmanager.sh", "kubernetes-session"]
    )
    assert last == _expected(memory)
    # Real Flink's BashJavaUtils, run by the script on the same configuration, computed the same heap.
    assert occurrences[0] == {"-Xmx": str(memory.heap)}
    assert "-XX:+UseG1GC" in args
    assert "-Xmx4g" not in args


def test_standalone_jobmanager_with_direct_memory_limit_on_flink_2(tmp_path: Path) -> None:
    deployment = flinkdeployment(
        {"jobmanager.memory.heap.size": "1g", "jobmanager.memory.enable-jvm-direct-memory-limit": "true"},
        memory=None,
        version="v2_3",
        mode="standalone",
    )
    last, (memory, occurrences, _) = _run(tmp_path, "2.3.0", deployment, ["jobmanager.sh", "start-foreground"])
    assert last == _expected(memory)
    assert last["-XX:MaxDirectMemorySize="] == "134217728"
    assert occurrences[0] == {"-Xmx": "1073741824"}


def test_legacy_heap_on_flink_1_native_gets_the_container_sized_heap(tmp_path: Path) -> None:
    # Flink 1.x sizes a native pod from jobmanager.heap.size as total process memory, while the
    # start script inside the pod reads it as heap. flinkmem's flags make the JVM fit the pod.
    deployment = flinkdeployment({"jobmanager.heap.size": "1g"}, memory=None, version="v1_20")
    last, (memory, occurrences, _) = _run(
        tmp_path, "1.20.3", deployment, ["kubernetes-jobmanager.sh", "kubernetes-session"]
    )
    assert last == _expected(memory)
    assert memory.total_process == 1024**3
    assert occurrences[0] == {"-Xmx": "1073741824"}  # what the script alone would have given the JVM
    assert last["-Xmx"] != "1073741824"


def test_standalone_jobmanager_on_flink_1(tmp_path: Path) -> None:
    deployment = flinkdeployment(
        {"env.java.opts.jobmanager": "-verbose:gc"}, memory="1600m", version="v1_20", mode="standalone"
    )
    last, (memory, occurrences, args) = _run(tmp_path, "1.20.3", deployment, ["jobmanager.sh", "start-foreground"])
    assert last == _expected(memory)
    assert occurrences[0] == {"-Xmx": "1073741824"}
    assert "-verbose:gc" in args
