"""A real Flink JobManager process, started as its pod would start it, to let Flink create TaskManager pods.

Native Kubernetes TaskManager pods are created only by a running JobManager's resource manager, and
the local control plane has no nodes to run the JobManager pod. :func:`running_jobmanager` runs that
pod's main container here instead, with the real JVM:

- in a private mount namespace whose ``/opt/flink`` looks like the image's: ``bin``, ``lib``, ``opt``
  and ``plugins`` of the cached flink-dist, ``conf`` holding Flink's ``flink-config-<cluster-id>``
  ConfigMap and ``pod-template`` holding its ``pod-template-<cluster-id>`` ConfigMap, where Flink's
  resource manager looks for the TaskManager pod template;
- in a private network namespace: the fixed ports (6123, 6124, 8081) cannot collide with anything,
  and nothing leaves it except the API server connection, carried by :mod:`tests.support.netbridge`
  over a Unix socket to the one API server address in the kubeconfig;
- with the container's command, its environment (the pod IP is 127.0.0.1) and ``KUBECONFIG``, which
  Flink's Kubernetes client reads when it is not given ``kubernetes.config.file``; in a pod it would
  use the ServiceAccount token instead, so pass a ServiceAccount-token kubeconfig for the same
  identity.

Only the JobManager's own JVM gets extra options (a small heap, appended after Flink's flags through
``FLINK_ENV_JAVA_OPTS_JM``); they are not part of the configuration it hands to TaskManagers.
Namespaces need root or unprivileged user namespaces (``unshare --user --map-root-user``).
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from tests.support import flinkdist
from tests.support.privileges import user_namespace_command, user_namespace_problem
from tests.support.startscript import StartScriptError, container_environment, write_config_dir

__all__ = ["LocalJobManager", "LocalJobManagerError", "running_jobmanager"]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
# The JobManager's own JVM only: the machine is shared and nothing runs on this JobManager.
JVM_OPTIONS: Final = ("-Xmx320m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
DIST_DIRS: Final = ("bin", "lib", "opt", "plugins")


class LocalJobManagerError(RuntimeError):
    """The JobManager process could not be started."""


@dataclass
class LocalJobManager:
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _api_endpoint(kubeconfig: Path) -> tuple[str, int]:
    doc = yaml.safe_load(kubeconfig.read_text())
    context = next(c["context"] for c in doc["contexts"] if c["name"] == doc["current-context"])
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    url = urlsplit(cluster["server"])
    if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
        raise LocalJobManagerError(f"the API server must be on loopback with an explicit port, not {url.geturl()}")
    return url.hostname, url.port


def _java_options_from_dist(version: str) -> str:
    """`env.java.opts.all` of the distribution's default config (the module opens Flink needs on Java 17)."""
    config = yaml.safe_load((flinkdist.flink_home(version) / "conf" / "config.yaml").read_text()) or {}
    value = ((config.get("env") or {}).get("java") or {}).get("opts", {})
    return str(value.get("all", "")) if isinstance(value, dict) else ""


def _wait_ready(process: subprocess.Popen[bytes], what: str, timeout: float = 20.0) -> None:
    """Waits for the bridge's `ready` line."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if readable else b""
    if line.strip() != b"ready":
        process.kill()
        raise LocalJobManagerError(f"{what} did not start: {line!r}")


def _launcher(workdir: Path, home: Path, command: str, api_port: int, socket_path: Path) -> str:
    mounts = "\n".join(
        f"mkdir -p /opt/flink/{name} && mount --bind {shlex.quote(str(home / name))} /opt/flink/{name}"
        for name in DIST_DIRS
    )
    bridge = [sys.executable, "-m", "tests.support.netbridge", "tcp-to-unix", str(api_port), str(socket_path)]
    return f"""set -eu
mount -t tmpfs flinkmem-opt /opt
{mounts}
mkdir -p /opt/flink/conf /opt/flink/pod-template /opt/flink/log
cp -r {shlex.quote(str(workdir / "conf"))}/. /opt/flink/conf/
cp -r {shlex.quote(str(workdir / "pod-template"))}/. /opt/flink/pod-template/
mount --bind {shlex.quote(str(workdir / "log"))} /opt/flink/log
cd {shlex.quote(str(REPO_ROOT))}
{shlex.join(bridge)} > {shlex.quote(str(workdir / "bridge.out"))} 2>&1 &
for _ in $(seq 100); do grep -q ready {shlex.quote(str(workdir / "bridge.out"))} 2>/dev/null && break; sleep 0.1; done
cd /opt/flink
exec bash -c {shlex.quote(command)}
"""


@contextmanager
def running_jobmanager(
    version: str,
    container: Mapping[str, Any],
    flink_config: Mapping[str, str],
    pod_templates: Mapping[str, str],
    kubeconfig: Path,
    workdir: Path,
) -> Iterator[LocalJobManager]:
    """Runs the JobManager container `container` of Flink `version` until the context ends.

    `flink_config` and `pod_templates` are the data of Flink's two ConfigMaps (the second may be
    empty). The process is killed (SIGKILL, so that it leaves its TaskManager pods alone) on exit.
    """
    problem = user_namespace_problem("a local Flink JobManager")
    if problem is not None:
        raise LocalJobManagerError(problem)
    home = flinkdist.flink_home(version)
    args = list(container.get("args") or [])
    if len(args) != 3 or args[:2] != ["bash", "-c"]:
        raise StartScriptError(f"expected args ['bash', '-c', <command>] as Flink builds them, got {args}")
    workdir.mkdir(parents=True, exist_ok=True)
    write_config_dir(flink_config, workdir / "conf")
    write_config_dir(pod_templates, workdir / "pod-template")
    (workdir / "log").mkdir(exist_ok=True)
    host, port = _api_endpoint(kubeconfig)
    socket_path = workdir / "api.sock"
    socket_path.unlink(missing_ok=True)

    host_bridge = subprocess.Popen(
        [sys.executable, "-m", "tests.support.netbridge", "unix-to-tcp", str(socket_path), host, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    jobmanager: subprocess.Popen[bytes] | None = None
    try:
        _wait_ready(host_bridge, "the API server bridge")
        launcher = workdir / "launch.sh"
        launcher.write_text(_launcher(workdir, home, args[2], port, socket_path))
        env = container_environment(container, pod_ip="127.0.0.1")
        own_opts = " ".join((env.get("FLINK_ENV_JAVA_OPTS_JM", ""), _java_options_from_dist(version), *JVM_OPTIONS))
        env.update(
            {
                "PATH": "/opt/flink/bin:/usr/local/bin:/usr/bin:/bin",
                "FLINK_HOME": "/opt/flink",
                "KUBECONFIG": str(kubeconfig),
                "HOME": str(workdir),
                "FLINK_ENV_JAVA_OPTS_JM": own_opts.strip(),
            }
        )
        if "JAVA_HOME" in os.environ:
            env["JAVA_HOME"] = os.environ["JAVA_HOME"]
        namespaces = user_namespace_command()
        log_path = workdir / "jobmanager.out"
        with log_path.open("wb") as log:
            jobmanager = subprocess.Popen(
                [*namespaces, "bash", str(launcher)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        yield LocalJobManager(jobmanager, log_path)
    finally:
        for process in (jobmanager, host_bridge):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
