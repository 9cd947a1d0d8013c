"""Running Flink's real start scripts with a stand-in `java` that records its command line.

The scripts (from the PyPI package `apache-flink`) still call the real BashJavaUtils, so the flags
they compute are real Flink's; HotSpot keeps the last occurrence of each flag, so the effective
flags are the last ones before the entrypoint class.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from tests.support import flinkdist

__all__ = ["ENTRYPOINTS", "dynamic_configs", "effective_flags", "run_start_script"]

ENTRYPOINTS = (
    "org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint",
    "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
    "org.apache.flink.kubernetes.taskmanager.KubernetesTaskExecutorRunner",
    "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
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


def _entrypoint(args: Sequence[str]) -> int:
    return next(i for i, a in enumerate(args) if a in ENTRYPOINTS)


def effective_flags(args: Sequence[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The last value of each memory flag before the entrypoint class, and every occurrence in order."""
    last: dict[str, str] = {}
    occurrences: list[dict[str, str]] = []
    for arg in args[: _entrypoint(args)]:
        for prefix in _FLAG_PREFIXES:
            if arg.startswith(prefix):
                last[prefix] = arg[len(prefix) :]
                occurrences.append({prefix: arg[len(prefix) :]})
    return last, occurrences


def dynamic_configs(args: Sequence[str]) -> dict[str, str]:
    """The `-D key=value` options the script hands Flink's entrypoint (after the class name)."""
    rest = list(args[_entrypoint(args) + 1 :])
    found: dict[str, str] = {}
    for index, arg in enumerate(rest):
        if arg == "-D" and index + 1 < len(rest):
            key, _, value = rest[index + 1].partition("=")
            found[key] = value
        elif arg.startswith("-D") and "=" in arg:
            key, _, value = arg[2:].partition("=")
            found[key] = value
    return found


def run_start_script(
    tmp_path: Path, version: str, config: Mapping[str, object], env: Mapping[str, str], command: Sequence[str]
) -> list[str]:
    """Runs `bin/<command>` of Flink `version` with `config` as its conf dir and `env`; the java arguments."""
    conf = tmp_path / "conf"
    conf.mkdir()
    if version.startswith("1."):
        (conf / "flink-conf.yaml").write_text("".join(f"{k}: {v}\n" for k, v in config.items()))
    else:
        (conf / "config.yaml").write_text(yaml.safe_dump(dict(config)))
    record = tmp_path / "java-args.txt"
    java_home = tmp_path / "java"
    _stand_in_java(java_home, record)
    (tmp_path / "log").mkdir()
    home = flinkdist.flink_home(version)
    completed = subprocess.run(
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
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return record.read_text().splitlines()
