"""Flink's own native Kubernetes client, run from the flink-dist of `tests.support.flinkdist`.

:func:`deploy` runs what a user of native Kubernetes runs: `bin/kubernetes-session.sh` for a session
cluster, `bin/flink run-application` (1.x) or `bin/flink run` (2.x, which has no `run-application`)
with `-t kubernetes-application` for an application cluster. It returns once the client has created
the JobManager Deployment, its Services and the `flink-config-<cluster-id>` ConfigMap: detached,
with a ClusterIP REST service, so the client never tries to reach the JobManager itself.

The client JVM is kept small (it shares two cores with everything else) and resolves host names
only from a hosts file of its own, so that it never asks a DNS server anything; its one connection
is to the API server named in the kubeconfig. The configuration directory is written by
:func:`write_conf_dir`: the user's options as `config.yaml` (or, for 1.x, the legacy
`flink-conf.yaml`) next to the distribution's logging files, as a user's `conf/` would have them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from tests.support import flinkdist

__all__ = ["APPLICATION_JAR", "ClientRun", "FlinkClientError", "deploy", "write_conf_dir"]

# The example every Flink image carries; `local://` means "inside the image", nothing is uploaded.
APPLICATION_JAR: Final = "local:///opt/flink/examples/streaming/WordCount.jar"
CLIENT_JVM_OPTIONS: Final = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
TIMEOUT: Final = 240.0

Mode = Literal["session", "application"]


class FlinkClientError(RuntimeError):
    """The client could not be run at all (as opposed to running and failing)."""


@dataclass(frozen=True)
class ClientRun:
    """One run of the client: its exit code and everything it printed."""

    command: tuple[str, ...]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def write_conf_dir(version: str, directory: Path, config: Mapping[str, str], *, legacy_file: bool = False) -> Path:
    """A Flink configuration directory holding `config` and the distribution's logging files.

    `config.yaml` gets flat keys with JSON-quoted values (valid YAML that Flink reads as plain
    strings, as from `-D`); `legacy_file` writes 1.x's `flink-conf.yaml`, whose parser keeps quotes,
    so its values go in unquoted.
    """
    if legacy_file and not version.startswith("1."):
        raise FlinkClientError(f"Flink {version} reads only config.yaml")
    directory.mkdir(parents=True, exist_ok=True)
    for item in (flinkdist.flink_home(version) / "conf").iterdir():
        if item.name.startswith(("log4j", "logback")):
            shutil.copy(item, directory / item.name)
    if legacy_file:
        text = "".join(f"{key}: {value}\n" for key, value in config.items())
        (directory / "flink-conf.yaml").write_text(text)
    else:
        text = "".join(f"{key}: {json.dumps(value)}\n" for key, value in config.items())
        (directory / "config.yaml").write_text(text)
    return directory


def _hosts_file(workdir: Path) -> Path:
    path = workdir / "hosts"
    path.write_text(f"127.0.0.1 localhost\n127.0.0.1 {socket.gethostname()}\n")
    return path


def deploy(
    version: str,
    mode: Mode,
    conf_dir: Path,
    *,
    cluster_id: str,
    namespace: str,
    kubeconfig: Path,
    workdir: Path,
    options: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> ClientRun:
    """Deploys a native Kubernetes cluster with Flink `version`'s client; `options` become `-D`s."""
    home = flinkdist.flink_home(version)
    workdir.mkdir(parents=True, exist_ok=True)
    dynamic = {
        "kubernetes.cluster-id": cluster_id,
        "kubernetes.namespace": namespace,
        "kubernetes.config.file": str(kubeconfig),
        "kubernetes.rest-service.exposed.type": "ClusterIP",
        "execution.attached": "false",
        **(options or {}),
    }
    properties = [f"-D{key}={value}" for key, value in dynamic.items()]
    if mode == "session":
        command = ["bash", str(home / "bin" / "kubernetes-session.sh"), *properties]
    else:
        action = "run-application" if version.startswith("1.") else "run"
        command = ["bash", str(home / "bin" / "flink"), action, "-t", "kubernetes-application"]
        command += [*properties, APPLICATION_JAR]
    java_options = " ".join((*CLIENT_JVM_OPTIONS, f"-Djdk.net.hosts.file={_hosts_file(workdir)}"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "FLINK_CONF_DIR": str(conf_dir),
        "FLINK_LOG_DIR": str(workdir / "log"),
        # Read by bin/flink and kubernetes-session.sh after every other JVM option: the client only.
        "FLINK_ENV_JAVA_OPTS_CLI": java_options,
    }
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    try:
        completed = subprocess.run(
            command, env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise FlinkClientError(f"the Flink {version} client did not return within {timeout:.0f} s") from exc
    output = completed.stdout + completed.stderr
    (workdir / "client.out").write_text(output)
    return ClientRun(tuple(command), completed.returncode, output)
