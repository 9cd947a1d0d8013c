"""Clusters deployed by Flink's own native Kubernetes client, and the checks their JobManager pods must pass.

Shared by the native-client e2e tests. A :class:`NativeCluster` is what `kubernetes-session.sh` or
`flink run(-application)` built on the local control plane: the JobManager Deployment, its pods, the
`flink-config-<cluster-id>` ConfigMap. :func:`check_jobmanager_pod` proves, with Flink's real start
script run against the pod's environment and Flink's ConfigMap, that a pod would start its JVM with
Flink's own derivation and that its container fits what that JobManager believes it has.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from localplane.controlplane import Cluster, wait_until
from tests.support.flinkclient import ClientRun, Mode, deploy, write_conf_dir
from tests.support.startscript import (
    Derivation,
    JavaCommand,
    derive_jobmanager,
    parse_dynamic_properties,
    run_container,
    write_config_dir,
)

__all__ = [
    "MAIN",
    "NativeCluster",
    "check_jobmanager_pod",
    "container",
    "container_dynamic_args",
    "expected_container_mib",
    "flink_version_field",
    "memory_mib",
    "start_native",
]

MAIN: Final = "flink-main-container"
MIB: Final = 1 << 20
# Quantities as the API server writes them back (it canonicalises `2048Mi` to `2Gi`).
_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti)?$")
_BINARY = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}


def memory_mib(quantity: str) -> float:
    """A memory quantity in MiB (binary suffixes and plain bytes, the forms Flink and the API server use)."""
    match = _QUANTITY.match(str(quantity))
    if match is None:
        raise AssertionError(f"unexpected memory quantity {quantity!r}")
    return int(match.group(1)) * _BINARY[match.group(2)] / MIB


def container(pod_spec: Mapping[str, Any], name: str = MAIN) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in pod_spec["containers"] if c["name"] == name)
    return found


def container_dynamic_args(main: Mapping[str, Any]) -> dict[str, str]:
    """The `-D` options on the container's `bash -c "kubernetes-jobmanager.sh <mode> ..."` line."""
    words = shlex.split(str((main.get("args") or ["", "", ""])[2]))
    return parse_dynamic_properties(words[2:])


def flink_version_field(version: str) -> str:
    """The FlinkDeployment `flinkVersion` of a Flink release: 2.3.0 -> v2_3."""
    major, minor, *_ = version.split(".")
    return f"v{major}_{minor}"


def expected_container_mib(total_process: int, limit_factor: float = 1.0) -> tuple[int, int]:
    """Flink's rule for a container: request = whole MiB of the total process, limit = int(request × factor)."""
    request = total_process >> 20
    return request, int(request * limit_factor)


@dataclass
class NativeCluster:
    """A Flink cluster the native client deployed: its version, names and the client's run."""

    cluster: Cluster
    version: str
    cluster_id: str
    namespace: str
    workdir: Path
    client: ClientRun

    def _get(self, kind: str, name: str) -> dict[str, Any]:
        out = self.cluster.kubectl("get", kind, name, "-n", self.namespace, "-o", "json").stdout
        found: dict[str, Any] = json.loads(out)
        return found

    def deployment(self) -> dict[str, Any]:
        return self._get("deployment", self.cluster_id)

    def configmap(self) -> dict[str, Any]:
        return self._get("configmap", f"flink-config-{self.cluster_id}")

    def pod_templates(self) -> dict[str, str]:
        """The data of `pod-template-<cluster-id>`, where Flink ships a TaskManager pod template."""
        data: dict[str, str] = self._get("configmap", f"pod-template-{self.cluster_id}")["data"]
        return data

    def flink_config_dir(self, name: str = "flink-conf") -> Path:
        """Flink's ConfigMap written out as a configuration directory (what the pod mounts)."""
        return write_config_dir(self.configmap()["data"], self.workdir / name)

    def pods(self, component: str = "jobmanager") -> list[dict[str, Any]]:
        selector = f"app={self.cluster_id},component={component}"
        out = self.cluster.kubectl("get", "pods", "-n", self.namespace, "-l", selector, "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def wait_for_pods(self, count: int, exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
        def ready() -> list[dict[str, Any]] | None:
            found = [p for p in self.pods() if p["metadata"]["name"] not in exclude]
            return found if len(found) >= count else None

        return wait_until(ready, timeout=60, what=f"{count} JobManager pod(s) of {self.cluster_id}")

    def replace_jobmanager_pods(self) -> list[dict[str, Any]]:
        """Deletes the JobManager pods, as a restart would; returns the ones the ReplicaSet makes next.

        The first pods are admitted before Flink writes its ConfigMap; their replacements come after it.
        """
        replicas = int(self.deployment()["spec"].get("replicas", 1))
        old = [p["metadata"]["name"] for p in self.wait_for_pods(replicas)]
        self.cluster.kubectl("delete", "pods", "-n", self.namespace, *old, "--wait=false")
        return self.wait_for_pods(replicas, exclude=old)

    def events(self, reason: str) -> list[dict[str, Any]]:
        out = self.cluster.kubectl(
            "get", "events", "-n", self.namespace, "--field-selector", f"reason={reason}", "-o", "json"
        ).stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    def delete(self) -> None:
        """Flink's own clean-up: everything hangs off the JobManager Deployment (ownerReferences)."""
        self.cluster.kubectl(
            "delete", "deployment", self.cluster_id, "-n", self.namespace, "--ignore-not-found", "--wait=false"
        )


def start_native(
    cluster: Cluster,
    namespace: str,
    version: str,
    workdir: Path,
    config: Mapping[str, str],
    *,
    mode: Mode = "session",
    cluster_id: str | None = None,
    legacy_file: bool = False,
    check: bool = True,
) -> NativeCluster:
    """Deploys with Flink `version`'s native client; `config` is the user's config file."""
    cluster_id = cluster_id or f"{mode[:3]}-{version.replace('.', '')}"
    conf = write_conf_dir(version, workdir / "conf", config, legacy_file=legacy_file)
    run = deploy(
        version,
        mode,
        conf,
        cluster_id=cluster_id,
        namespace=namespace,
        kubeconfig=cluster.kubeconfig,
        workdir=workdir / "client",
    )
    native = NativeCluster(cluster, version, cluster_id, namespace, workdir, run)
    if check:
        assert run.ok, f"Flink {version}'s client failed:\n{run.output[-4000:]}"
    return native


@dataclass(frozen=True)
class PodCheck:
    """What Flink's start script did in one pod, and the derivation it was compared with."""

    command: JavaCommand
    reference: Derivation
    request_mib: float
    limit_mib: float


def check_jobmanager_pod(
    native: NativeCluster,
    pod: Mapping[str, Any],
    *,
    reference: Derivation | None = None,
    limit_factor: float = 1.0,
) -> PodCheck:
    """Asserts that `pod` runs Flink's own JobManager derivation and that its container fits it.

    Runs the pod's real start script with the pod's environment and Flink's ConfigMap. Without a
    `reference`, the expectation is real Flink's derivation for what Flink gave the JobManager: its
    ConfigMap plus the `-D` options on the command line of the Deployment's container (as Flink
    built it, never as a webhook changed the pod).

    1. the JVM keeps exactly the reference's `-Xmx`, `-Xms`, `-XX:MaxMetaspaceSize` (and
       `-XX:MaxDirectMemorySize` when enabled): no Java option overrides them;
    2. the `-D jobmanager.memory.*` options the JobManager receives are the reference's, so Flink's
       own view of its memory matches its JVM;
    3. the container's memory request is the whole MiB of that total process and its limit that
       times the limit factor, as Flink sizes its own containers.
    """
    name = pod["metadata"]["name"]
    main = container(pod["spec"])
    data = native.configmap()["data"]
    command = run_container(native.version, main, data, native.workdir / f"script-{name}")
    flink_args = container_dynamic_args(container(native.deployment()["spec"]["template"]["spec"]))
    if reference is None:
        reference = derive_jobmanager(native.version, native.flink_config_dir(), flink_args)
    flags = command.memory_flags()
    assert flags == reference.jvm_flags, (
        f"pod {name}: the JVM would run with {flags}, Flink derives {reference.jvm_flags} "
        f"(memory flags in order: {command.memory_flag_occurrences()})"
    )
    received = {k: v for k, v in command.dynamic_properties().items() if k.startswith("jobmanager.memory.")}
    # The script passes its derivation first and the container's own -D options after it.
    told = {**reference.memory_dynamic(), **{k: v for k, v in flink_args.items() if k.startswith("jobmanager.memory.")}}
    assert received == told, f"pod {name}: the JobManager is told {received}, Flink derives {told}"
    resources = main.get("resources") or {}
    request = memory_mib((resources.get("requests") or {}).get("memory", "0"))
    limit = memory_mib((resources.get("limits") or {}).get("memory", "0"))
    assert (request, limit) == expected_container_mib(reference.total_process, limit_factor), (
        f"pod {name}: container {request}Mi/{limit}Mi, but its JobManager's total process memory is "
        f"{reference.total_process} bytes (limit factor {limit_factor})"
    )
    return PodCheck(command, reference, request, limit)
