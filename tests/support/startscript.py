"""Flink's real start scripts, run against what a Flink pod would get, with a stand-in `java`.

A container built by Flink's native Kubernetes client runs `/docker-entrypoint.sh bash -c
"kubernetes-jobmanager.sh ..."` (or `kubernetes-taskmanager.sh ...`) with Flink's ConfigMap mounted as
its configuration directory. :func:`run_container` runs that same `bash -c` command line with the
scripts of the flink-dist cached by `tests.support.flinkdist`, the container's environment and the
ConfigMap's files as `FLINK_CONF_DIR`. `java` is a stand-in that records its arguments instead of
starting Flink, except for BashJavaUtils, which it hands to the real JVM: the scripts still compute
their memory flags with real Flink. HotSpot keeps the last occurrence of a flag and Flink's
configuration parser the last `-D` of a key, so the effective values are the last ones.

The image's own `/docker-entrypoint.sh` is not run: for these argument lists it only passes them
through, after trying to rewrite a few network options into the (read-only) mounted configuration.

:func:`derive_jobmanager` asks real Flink's BashJavaUtils directly for its JobManager derivation of
a configuration directory plus `-D` options: the reference the effective flags are compared with.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tests.support import flinkdist

__all__ = [
    "ENTRYPOINT_CLASSES",
    "Derivation",
    "JavaCommand",
    "StartScriptError",
    "container_environment",
    "derive_jobmanager",
    "derive_taskmanager",
    "parse_dynamic_properties",
    "parse_flink_bytes",
    "run_container",
    "write_config_dir",
]

ENTRYPOINT_CLASSES: Final = (
    "org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint",
    "org.apache.flink.kubernetes.entrypoint.KubernetesApplicationClusterEntrypoint",
    "org.apache.flink.kubernetes.taskmanager.KubernetesTaskExecutorRunner",
    "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
    "org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint",
    "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
)
MEMORY_FLAGS: Final = ("-Xmx", "-Xms", "-XX:MaxDirectMemorySize=", "-XX:MaxMetaspaceSize=")
BASH_JAVA_UTILS: Final = "org.apache.flink.runtime.util.bash.BashJavaUtils"
RESULT_PREFIX: Final = "BASH_JAVA_UTILS_EXEC_RESULT:"
# BashJavaUtils needs little; the machine is shared.
UTILS_JVM_OPTIONS: Final = ("-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
# What `valueFrom: fieldRef: status.podIP` would give: an address of TEST-NET-1, never contacted.
POD_IP: Final = "192.0.2.10"


class StartScriptError(RuntimeError):
    """A start script or BashJavaUtils failed, or the container is not one Flink built."""


def _real_java() -> str:
    java_home = os.environ.get("JAVA_HOME", "").strip()
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    found = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if not found:
        raise StartScriptError("a real `java` is needed for BashJavaUtils: install a JDK or set JAVA_HOME")
    return os.path.realpath(found)


def _stand_in_java_home(root: Path, record: Path) -> Path:
    """A JAVA_HOME whose `bin/java` records its arguments, one per line, except for BashJavaUtils."""
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True, exist_ok=True)
    real = shlex.quote(_real_java())
    options = " ".join(UTILS_JVM_OPTIONS)
    java.write_text(
        "#!/bin/bash\n"
        'for arg in "$@"; do\n'
        f'  case "$arg" in {BASH_JAVA_UTILS}|-version) exec {real} {options} "$@";; esac\n'
        "done\n"
        f"printf '%s\\n' \"$@\" > {shlex.quote(str(record))}\n"
    )
    java.chmod(0o755)
    return root


@dataclass(frozen=True)
class JavaCommand:
    """The `java` command line a start script ended with (arguments only, without `java`)."""

    args: tuple[str, ...]

    @property
    def entrypoint_index(self) -> int:
        for index, arg in enumerate(self.args):
            if arg in ENTRYPOINT_CLASSES:
                return index
        raise StartScriptError(f"no Flink entrypoint class in the java command line: {self.args}")

    @property
    def entrypoint(self) -> str:
        return self.args[self.entrypoint_index]

    @property
    def jvm_options(self) -> tuple[str, ...]:
        return self.args[: self.entrypoint_index]

    @property
    def program_args(self) -> tuple[str, ...]:
        return self.args[self.entrypoint_index + 1 :]

    def memory_flags(self) -> dict[str, str]:
        """The value the JVM keeps for each memory flag: its last occurrence."""
        flags: dict[str, str] = {}
        for option in self.jvm_options:
            for prefix in MEMORY_FLAGS:
                if option.startswith(prefix):
                    flags[prefix] = option[len(prefix) :]
        return flags

    def memory_flag_occurrences(self) -> list[tuple[str, str]]:
        """Every memory flag in order, e.g. Flink's own `-Xmx` followed by one from Java options."""
        found: list[tuple[str, str]] = []
        for option in self.jvm_options:
            for prefix in MEMORY_FLAGS:
                if option.startswith(prefix):
                    found.append((prefix, option[len(prefix) :]))
        return found

    def dynamic_properties(self) -> dict[str, str]:
        """The `-D key=value` / `-Dkey=value` program arguments; the last one of a key wins."""
        return parse_dynamic_properties(self.program_args)


def parse_dynamic_properties(args: Sequence[str]) -> dict[str, str]:
    """Flink's reading of `-D` arguments: `-D k=v` and `-Dk=v`, the last one of a key wins."""
    found: dict[str, str] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-D" and index + 1 < len(args):
            pair, index = args[index + 1], index + 2
        elif arg.startswith("-D") and len(arg) > 2:
            pair, index = arg[2:], index + 1
        else:
            index += 1
            continue
        key, sep, value = pair.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def container_environment(container: Mapping[str, Any], pod_ip: str = POD_IP) -> dict[str, str]:
    """The container's environment as the kubelet would set it: plain values and downward-API fields.

    The pod IP is `pod_ip`; the node name a placeholder (the local control plane has no nodes).
    """
    fields = {"status.podIP": pod_ip, "spec.nodeName": "flinkmem-node"}
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if "value" in item:
            env[name] = str(item.get("value") or "")
            continue
        path = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if path not in fields:
            raise StartScriptError(f"env {name} comes from {item.get('valueFrom')}, which this runner cannot resolve")
        env[name] = fields[path]
    return env


def write_config_dir(files: Mapping[str, str], directory: Path) -> Path:
    """Writes a ConfigMap's data (file name -> content) as a configuration directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if "/" in name or name in ("", ".", ".."):
            raise StartScriptError(f"unexpected ConfigMap key {name!r}")
        (directory / name).write_text(content)
    return directory


def _bash_command(container: Mapping[str, Any]) -> str:
    args = list(container.get("args") or [])
    if len(args) != 3 or args[:2] != ["bash", "-c"]:
        raise StartScriptError(f"expected args ['bash', '-c', <command>] as Flink builds them, got {args}")
    return str(args[2])


def run_container(
    version: str,
    container: Mapping[str, Any],
    configmap_data: Mapping[str, str],
    workdir: Path,
    *,
    pod_ip: str = POD_IP,
    timeout: float = 120.0,
) -> JavaCommand:
    """Runs the container's start command with Flink `version`'s scripts; returns the java command line."""
    home = flinkdist.flink_home(version)
    workdir.mkdir(parents=True, exist_ok=True)
    conf = write_config_dir(configmap_data, workdir / "conf")
    record = workdir / "java-args.txt"
    record.unlink(missing_ok=True)
    java_home = _stand_in_java_home(workdir / "java", record)
    (workdir / "log").mkdir(exist_ok=True)
    env = {
        **container_environment(container, pod_ip),
        # As in the image: Flink's bin/ on the PATH, the ConfigMap mounted as the configuration.
        "PATH": f"{home / 'bin'}:/usr/bin:/bin",
        "FLINK_HOME": str(home),
        "FLINK_CONF_DIR": str(conf),
        "FLINK_LOG_DIR": str(workdir / "log"),
        "JAVA_HOME": str(java_home),
    }
    completed = subprocess.run(
        ["bash", "-c", _bash_command(container)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=workdir,
    )
    if completed.returncode != 0 or not record.is_file():
        raise StartScriptError(
            f"the start command exited with {completed.returncode}:\n"
            f"{completed.stdout[-3000:]}{completed.stderr[-3000:]}"
        )
    return JavaCommand(tuple(record.read_text().splitlines()))


_JOBMANAGER_PARTS: Final = ("heap.size", "off-heap.size", "jvm-metaspace.size", "jvm-overhead.min")
_TASKMANAGER_PARTS: Final = (
    "framework.heap.size",
    "task.heap.size",
    "framework.off-heap.size",
    "task.off-heap.size",
    "managed.size",
    "network.min",
    "jvm-metaspace.size",
    "jvm-overhead.min",
)


@dataclass(frozen=True)
class Derivation:
    """Real Flink's memory for one component: its JVM flags and its `-D` memory options."""

    component: str  # "jobmanager" or "taskmanager"
    jvm_flags: dict[str, str]
    dynamic: dict[str, str]

    def size(self, option: str) -> int:
        """A derived size in bytes, e.g. `size("heap.size")` for `jobmanager.memory.heap.size`."""
        return parse_flink_bytes(self.dynamic[f"{self.component}.memory.{option}"])

    @property
    def total_process(self) -> int:
        """The sum of the parts (Flink pins overhead, and the TaskManager's network, min = max)."""
        parts = _JOBMANAGER_PARTS if self.component == "jobmanager" else _TASKMANAGER_PARTS
        return sum(self.size(part) for part in parts)

    def memory_dynamic(self) -> dict[str, str]:
        return {k: v for k, v in self.dynamic.items() if k.startswith(f"{self.component}.memory.")}


def parse_flink_bytes(text: str) -> int:
    """Flink writes its derived sizes as `<bytes>b`."""
    if not text.endswith("b") or not text[:-1].isdigit():
        raise StartScriptError(f"not a byte count as Flink writes it: {text!r}")
    return int(text[:-1])


def _derive(version: str, command: str, component: str, config_dir: Path, dynamic: Mapping[str, str]) -> Derivation:
    classpath = f"{flinkdist.bash_java_utils_jar(version)}:{flinkdist.flink_dist_jar(version)}"
    argv = [_real_java(), *UTILS_JVM_OPTIONS, "-classpath", classpath, BASH_JAVA_UTILS]
    argv += [command, "--configDir", str(config_dir)]
    for key, value in dynamic.items():
        argv += ["-D", f"{key}={value}"]
    # 1.x reads the legacy JobManager heap from FLINK_JM_HEAP: never let it leak in from here.
    environment = {
        k: v for k, v in os.environ.items() if k not in ("FLINK_JM_HEAP", "FLINK_TM_HEAP", "JAVA_TOOL_OPTIONS")
    }
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=environment)
    results = [line[len(RESULT_PREFIX) :] for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or len(results) != 2:
        raise StartScriptError(
            f"BashJavaUtils {command} failed ({completed.returncode}):\n"
            f"{completed.stdout[-3000:]}{completed.stderr[-2000:]}"
        )
    flags = JavaCommand((*results[0].split(), ENTRYPOINT_CLASSES[0])).memory_flags()
    return Derivation(component, flags, parse_dynamic_properties(results[1].split()))


def derive_jobmanager(version: str, config_dir: Path, dynamic: Mapping[str, str] | None = None) -> Derivation:
    """`BashJavaUtils GET_JM_RESOURCE_PARAMS` of Flink `version`, as kubernetes-jobmanager.sh runs it."""
    return _derive(version, "GET_JM_RESOURCE_PARAMS", "jobmanager", config_dir, dynamic or {})


def derive_taskmanager(version: str, config_dir: Path, dynamic: Mapping[str, str] | None = None) -> Derivation:
    """`BashJavaUtils GET_TM_RESOURCE_PARAMS` of Flink `version`: the TaskManager spec of a configuration."""
    return _derive(version, "GET_TM_RESOURCE_PARAMS", "taskmanager", config_dir, dynamic or {})
