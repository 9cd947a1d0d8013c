"""The scheduler and kubelet for flinkmem's own pods on the HA plane, played by the harness.

The HA plane (:mod:`localplane.haplane`) has no scheduler and no kubelet. For the pods of one
Deployment (flinkmem's, as its chart installs it) this module does what those two would do, and the
rest stays real: the ReplicaSet controller makes the pods, the EndpointSlice controller of
kube-controller-manager turns their readiness into the Service's endpoints, and the API server
routes webhook calls to those endpoints.

As the scheduler: each pod is bound (``pods/binding``) to a node of its own, since the chart
spreads replicas over nodes.

As the kubelet, following the kubelet's documented behaviour:

- registers one Node per address and renews its Lease every 10 s, so the node lifecycle controller
  keeps it Ready;
- waits with a container until its Secret and ConfigMap volumes can be mounted (ContainerCreating), then writes
  them as the kubelet's atomic writer does: the files of a version in a ``..<timestamp>`` directory,
  ``..data`` a symlink to it, swapped by an atomic rename, the visible names symlinks into
  ``..data``; it re-reads them every ``volume_sync`` seconds (the kubelet: about a minute);
- fills projected volumes (the ServiceAccount admission plugin's ``kube-api-access-*``: a token
  bound to the pod from the TokenRequest API, renewed after 80 % of its lifetime, the cluster CA
  and the namespace) and emptyDirs (mode 0777); with the pod's ``fsGroup`` the volumes belong to
  that group;
- resolves the container's environment (values and ``fieldRef``, and the Service links of
  ``enableServiceLinks``) and starts the container through its :class:`Runtime`;
- relists containers every second (the generic PLEG): a container that exited makes the pod not
  Ready at once and is restarted, the first time at once, then after 10 s, 20 s, ... up to 300 s
  (CrashLoopBackOff); ten minutes of running reset that back-off;
- runs the readiness and liveness probes with the pod's own settings (period, timeout, thresholds,
  initial delay): readiness starts failed and is probed as soon as the container runs; a liveness
  failure streak kills the container (SIGTERM, then SIGKILL after the grace period) and restarts it;
- reports all of it in the pod's status (IP, conditions, container state, restart count, container
  and image IDs, OOMKilled), with a strategic-merge patch as the kubelet's status manager does;
- on deletion (an eviction too), stops the container as the kubelet does: the preStop hook first
  (only the ``sleep`` action is implemented), then SIGTERM with what is left of the grace period
  (at least 2 s), SIGKILL after it; then removes the pod;
- as the scheduler, binds pods only to nodes that are not cordoned (``spec.unschedulable``);
  :meth:`Kubelet.drain` does what ``kubectl drain`` does: cordon the node, evict its pods through
  the Eviction API (the API server applies the PodDisruptionBudget: 429 means try again, every 5 s
  as kubectl does) and wait until they are gone.

Two runtimes:

- :class:`PodmanRuntime` (the HA suite's default) runs the container from its image with podman and
  runc, as a CRI runtime would: the image's entrypoint with the container's args, the pod's security
  context (user, groups, read-only root, capabilities, no-new-privileges, seccomp), its volumes bind-
  mounted where the container mounts them (the Secret directory whole, so the ``..data`` swap reaches
  the container), its memory and CPU limits. Stopping it is ``podman stop``: SIGTERM to the main
  process (PID 1 of the container), SIGKILL to everything after the grace period. flinkmem reads its
  credentials from the in-cluster paths, as in a cluster.
- :class:`ProcessRuntime` runs ``python -m flinkmem serve`` of the development venv as a local
  process group with the container's args, as the test's user: quick, but nothing of the image or
  the security context is under test. Volume paths in the environment are rewritten to the pod's
  directories, and flinkmem finds its token and CA through a kubeconfig (``tokenFile``,
  ``certificate-authority``) naming the API server's address: flinkmem's in-cluster paths
  are fixed (/var/run/secrets/...).

Deviations that remain with both (none changes what flinkmem sees through the API server):

- all pods share the plane's network namespace, so each listens on its pod IP only (the environment
  gets ``FLINKMEM_BIND_ADDRESS``) where a pod would listen on 0.0.0.0 of its own namespace;
- no kube-proxy implements ClusterIPs, so the ``kubernetes`` Service's environment
  (``KUBERNETES_SERVICE_HOST``/``_PORT``) names the API server's own address and port;
- images are never pulled (there is no registry): a missing image is ``ErrImageNeverPull``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flinkmem.runtime.lifecycle import die_with_parent
from localplane.rest import Answer, Rest, Unreachable

__all__ = ["Drained", "Kubelet", "Node", "PodView", "Probe", "write_atomically"]

logger = logging.getLogger("localplane.kubelet")

PLEG_PERIOD = 1.0
LEASE_PERIOD = 10.0
LEASE_DURATION = 40
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class HarnessError(RuntimeError):
    """The pod asks for something this stand-in does not implement."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Node:
    name: str
    address: str


@dataclass(frozen=True)
class Probe:
    """An httpGet probe of a container spec, with Kubernetes' defaults for what it leaves out."""

    path: str
    port: int
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay: float = 0.0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None, ports: Mapping[str, int]) -> Probe | None:
        if not spec:
            return None
        get = spec.get("httpGet")
        if not get:
            raise HarnessError(f"only httpGet probes are implemented, not {sorted(spec)}")
        port = get["port"]
        return cls(
            path=get.get("path", "/"),
            port=ports[port] if isinstance(port, str) else int(port),
            period=float(spec.get("periodSeconds", 10)),
            timeout=float(spec.get("timeoutSeconds", 1)),
            failure_threshold=int(spec.get("failureThreshold", 3)),
            success_threshold=int(spec.get("successThreshold", 1)),
            initial_delay=float(spec.get("initialDelaySeconds", 0)),
        )

    def check(self, address: str) -> bool:
        """One probe: any answer from 200 to 399 within the timeout is a success."""
        try:
            url = f"http://{address}:{self.port}{self.path}"
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                return 200 <= int(response.status) < 400
        except urllib.error.HTTPError as exc:
            return 200 <= exc.code < 400
        except OSError:
            return False


@dataclass
class _Prober:
    """Consecutive results of one probe and the verdict they add up to."""

    probe: Probe
    result: bool
    successes: int = 0
    failures: int = 0
    due: float = 0.0

    def run(self, address: str, now: float) -> bool:
        self.due = now + self.probe.period
        if self.probe.check(address):
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.probe.success_threshold:
                self.result = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= self.probe.failure_threshold:
                self.result = False
        return self.result


def write_atomically(target: Path, files: Mapping[str, bytes], mode: int = 0o644, group: int | None = None) -> bool:
    """Puts ``files`` into ``target`` as the kubelet updates a Secret volume; False if nothing changed.

    The new version goes into a fresh ``..<timestamp>.<n>`` directory, the ``..data`` symlink is
    swapped to it by renaming a new symlink over it (atomic: a reader sees the old set or the new
    one, never a mix), and each visible name is a symlink into ``..data``. With ``group`` (the pod's
    fsGroup) the files and directories belong to that group, as the kubelet sets volume ownership.
    """
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    if data_link.is_symlink():
        current = target / os.readlink(data_link)
        if {p.name: p.read_bytes() for p in current.iterdir()} == dict(files):
            return False
    else:
        current = None
    stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    version = target / stamp
    version.mkdir()
    for name, data in files.items():
        (version / name).write_bytes(data)
        (version / name).chmod(mode)
        if group is not None:
            os.chown(version / name, -1, group)
    if group is not None:
        os.chown(version, -1, group)
        os.chown(target, -1, group)
    tmp_link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(stamp)
    os.rename(tmp_link, data_link)
    for name in files:
        visible = target / name
        if not visible.is_symlink():
            visible.symlink_to(f"..data/{name}")
    for stale in target.iterdir():
        if stale.is_symlink() and not stale.name.startswith("..") and stale.name not in files:
            stale.unlink()
    if current is not None:
        shutil.rmtree(current, ignore_errors=True)
    return True


@dataclass(frozen=True)
class PodView:
    """What the harness knows about one pod it runs."""

    name: str
    node: str
    ip: str
    pid: int | None
    ready: bool
    restarts: int
    log: Path | None


@dataclass
class _Run:
    """One run of the container, with its log."""

    container: Container
    started: float
    started_at: str
    log: Path


class ContainerConfigError(RuntimeError):
    """The container cannot be started as the pod asks; ``reason`` is the kubelet's waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Container(ABC):
    """One started container, as the runtime reports it."""

    id: str  # the containerID of the pod's status: ``<runtime>://<id>``
    pid: int  # its main process, as this machine sees it

    @abstractmethod
    def poll(self) -> tuple[int, str | None] | None:
        """None while it runs; then its exit code and, if the runtime knows one, the reason (OOMKilled)."""

    @abstractmethod
    def stop(self, grace: float) -> None:
        """SIGTERM to the main process, SIGKILL to everything in the container after ``grace`` seconds;
        returns once it has exited."""

    @abstractmethod
    def kill_all(self, sig: signal.Signals) -> None:
        """``sig`` to everything in the container at once (SIGKILL: as when it is killed or OOM-killed)."""


class Runtime(ABC):
    """Starts a pod's container: as a local process (:class:`ProcessRuntime`) or from its image with
    podman (:class:`PodmanRuntime`)."""

    name: str

    @abstractmethod
    def start(self, runner: _PodRunner, log: Path) -> Container:
        """Starts the runner's container, its output going to ``log``."""

    def image_id(self, image: str) -> str:
        return ""

    def close(self) -> None:  # noqa: B027 (nothing to remove by default)
        """Removes whatever the runtime left behind."""


@dataclass
class _Process(Container):
    process: subprocess.Popen[bytes]

    def __post_init__(self) -> None:
        self.id = f"local://{self.process.pid}"
        self.pid = self.process.pid

    def poll(self) -> tuple[int, str | None] | None:
        code = self.process.poll()
        if code is None:
            return None
        return (128 - code if code < 0 else code), None

    def stop(self, grace: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        self.kill_all(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def kill_all(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)


class ProcessRuntime(Runtime):
    """``python -m flinkmem serve`` (the image's entrypoint) of the development venv, as a local
    process group with the container's args; quick, but neither the image nor the pod's security
    context is under test (see the module's docstring)."""

    name = "process"

    def start(self, runner: _PodRunner, log: Path) -> Container:
        (runner.dir / "home").mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "flinkmem", "serve", *runner.container.get("args", [])]
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=runner.dir / "home",
                env=runner._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        return _Process(process)


PODMAN = ("podman", "--runtime=runc", "--cgroup-manager=cgroupfs")
# Every container this stand-in starts carries these labels: whose it is (the test process), so
# that containers left behind by a killed run are found and removed by the next one.
OWNER_LABEL = "io.flinkmem.kubelet.owner"
POD_LABEL = "io.flinkmem.kubelet.pod"


# What a CRI runtime gives a container by default, where podman's own defaults differ: containerd's
# default capabilities, and no sysctls (podman sets net.ipv4.ping_group_range, which runc refuses in
# a network namespace it was itself started in, as here).
CONTAINERS_CONF = """\
[containers]
default_sysctls = []
default_capabilities = [
  "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
  "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
]
"""
_podman_env: dict[str, str] = {}


def _podman(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PODMAN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **_podman_env},
    )


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (``512Mi``, ``1``, ``100m``, ``1.5G``) as a number."""
    text = str(value).strip()
    suffixes = {
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
        "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    }  # fmt: skip
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * suffixes[suffix]
    return float(text)


@dataclass
class _PodmanContainer(Container):
    """A container run by an attached ``podman run`` (its exit code is the container's)."""

    name: str
    client: subprocess.Popen[bytes]

    def __post_init__(self) -> None:
        self.id = f"podman://{self.name}"
        self.pid = 0
        self._result: tuple[int, str | None] | None = None

    def inspect(self) -> tuple[str, int, str, bool] | None:
        """(id, main pid, status, OOM-killed) of the container, None if podman does not know it."""
        fields = "{{.Id}} {{.State.Pid}} {{.State.Status}} {{.State.OOMKilled}}"
        out = _podman("container", "inspect", "--format", fields, self.name, timeout=30)
        if out.returncode != 0:
            return None
        cid, pid, status, oom = out.stdout.split()
        return cid, int(pid), status, oom == "true"

    def poll(self) -> tuple[int, str | None] | None:
        if self._result is not None:
            return self._result
        code = self.client.poll()
        if code is None:
            return None
        state = self.inspect()
        reason = "OOMKilled" if state is not None and state[3] else None
        _podman("rm", "--force", "--ignore", self.name, timeout=60)
        self._result = (128 - code if code < 0 else code), reason
        return self._result

    def stop(self, grace: float) -> None:
        # podman stop: the image's stop signal (SIGTERM) to the main process, SIGKILL after the timeout.
        _podman("stop", "--ignore", "--time", str(max(0, round(grace))), self.name, timeout=grace + 60)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.client.wait(timeout=30)
        if self.client.poll() is None:
            self.client.kill()
            self.client.wait(timeout=10)
        self.poll()  # records how it ended and removes it

    def kill_all(self, sig: signal.Signals) -> None:
        # The main process is the pid namespace's init: SIGKILL to it takes everything in it along.
        _podman("kill", "--signal", sig.name, self.name, timeout=60)


@dataclass
class PodmanRuntime(Runtime):
    """The container from its image, run by podman (runc) in the network namespace at ``netns``.

    What the kubelet and a CRI runtime would apply, from the pod spec: the container's args (after
    the image's entrypoint) and environment; the effective security context (pod-level merged with
    the container's): runAsUser/runAsGroup (``--user``), fsGroup and supplementalGroups
    (``--group-add``; volumes get group ownership), runAsNonRoot (checked against the user before
    starting, as the kubelet does: CreateContainerConfigError), readOnlyRootFilesystem (``--read-only``
    with no tmpfs of podman's own: only the pod's volumes are writable), allowPrivilegeEscalation=false
    (``no-new-privileges``), capabilities drop/add, seccompProfile (RuntimeDefault: podman's default
    profile; unset or Unconfined: none, the kubelet's default); the volume mounts (bind mounts of
    the per-pod volume directories, read-only where the mount says so); resource limits (memory:
    ``--memory`` with no swap, CPU: ``--cpus``) and the CPU request (``--cpu-shares``); the pod name
    as hostname. The image is never pulled (IfNotPresent and Never: there is no registry here).
    """

    netns: str
    owner: str = field(default_factory=lambda: str(os.getpid()))
    name: str = "podman"
    _images: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if shutil.which("podman") is None:
            raise HarnessError("podman is not installed: `make image` installs it (hack/image.sh)")
        conf = Path(tempfile.gettempdir()) / "flinkmem-kubelet-containers.conf"
        conf.write_text(CONTAINERS_CONF)
        _podman_env["CONTAINERS_CONF"] = str(conf)
        self.reap_orphans()

    def reap_orphans(self) -> None:
        """Removes containers of this stand-in whose test process is gone (a killed run)."""
        out = _podman(
            "ps",
            "--all",
            "--filter",
            f"label={OWNER_LABEL}",
            "--format",
            f'{{{{.Names}}}} {{{{index .Labels "{OWNER_LABEL}"}}}}',
        )
        for line in out.stdout.splitlines():
            name, _, owner = line.partition(" ")
            if owner != self.owner and not Path(f"/proc/{owner}").exists():
                _podman("rm", "--force", "--time", "0", name)

    def close(self) -> None:
        out = _podman("ps", "--all", "--filter", f"label={OWNER_LABEL}={self.owner}", "--format", "{{.Names}}")
        for name in out.stdout.split():
            _podman("rm", "--force", "--time", "0", name)

    def _image(self, image: str) -> tuple[str, str]:
        """(id, user) of a local image; ErrImageNeverPull if it is not there."""
        if image not in self._images:
            out = _podman("image", "inspect", "--format", "{{.Id}}|{{.Config.User}}", image)
            if out.returncode != 0:
                raise ContainerConfigError(
                    "ErrImageNeverPull",
                    f"image {image} is not present here and nothing can be pulled: run `make image`",
                )
            image_id, _, user = out.stdout.strip().partition("|")
            self._images[image] = (image_id, user)
        return self._images[image]

    def image_id(self, image: str) -> str:
        with contextlib.suppress(ContainerConfigError):
            return f"sha256:{self._image(image)[0]}"
        return ""

    def argv(self, runner: _PodRunner, name: str) -> list[str]:
        """The ``podman run`` command line for the runner's container (public for the tests)."""
        spec, container = runner.pod["spec"], runner.container
        image = str(container["image"])
        _, image_user = self._image(image)
        pod_sc: Mapping[str, Any] = spec.get("securityContext") or {}
        sc: dict[str, Any] = {**pod_sc, **(container.get("securityContext") or {})}
        args = [
            "run", "--rm=false", "--name", name, "--pull", "never", "--network", f"ns:{self.netns}",
            "--hostname", runner.name_, "--stop-signal", "SIGTERM", "--stop-timeout", str(round(runner.grace)),
            "--label", f"{OWNER_LABEL}={self.owner}", "--label", f"{POD_LABEL}={runner.namespace}/{runner.name_}",
            "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
        ]  # fmt: skip
        # The user: runAsUser wins over the image's USER; runAsNonRoot is checked as the kubelet does.
        user, _, group = image_user.partition(":")
        if sc.get("runAsUser") is not None:
            user = str(sc["runAsUser"])
        if sc.get("runAsGroup") is not None:
            group = str(sc["runAsGroup"])
        if sc.get("runAsNonRoot"):
            if not user.isdigit():
                raise ContainerConfigError(
                    "CreateContainerConfigError",
                    f"container has runAsNonRoot and image has non-numeric user ({user or 'none'}), "
                    "cannot verify user is non-root",
                )
            if int(user) == 0:
                raise ContainerConfigError(
                    "CreateContainerConfigError", "container has runAsNonRoot and image will run as root"
                )
        if user:
            args += ["--user", f"{user}:{group}" if group else user]
        for extra in [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])]:
            if extra is not None:
                args += ["--group-add", str(extra)]
        if sc.get("privileged"):
            raise HarnessError("privileged containers are not implemented")
        if sc.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        capabilities = sc.get("capabilities") or {}
        for cap in capabilities.get("drop") or []:
            args += ["--cap-drop", str(cap)]
        for cap in capabilities.get("add") or []:
            args += ["--cap-add", str(cap)]
        seccomp = (sc.get("seccompProfile") or {}).get("type", "Unconfined")
        if seccomp == "Unconfined":
            args += ["--security-opt", "seccomp=unconfined"]
        elif seccomp != "RuntimeDefault":
            raise HarnessError(f"seccompProfile {seccomp} is not implemented")
        # Resources, as the kubelet sets the container's cgroup.
        resources = container.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        if "memory" in limits:
            memory = int(parse_quantity(limits["memory"]))
            args += ["--memory", f"{memory}b", "--memory-swap", f"{memory}b"]
        if "cpu" in limits:
            args += ["--cpus", f"{parse_quantity(limits['cpu']):.3f}"]
        cpu_request = requests.get("cpu", limits.get("cpu"))
        if cpu_request is not None:
            args += ["--cpu-shares", str(max(2, int(parse_quantity(cpu_request) * 1024)))]
        # Volumes: the per-pod directories, bound where the container mounts them.
        for mount in container.get("volumeMounts") or []:
            if mount.get("subPath") or mount.get("subPathExpr"):
                raise HarnessError("subPath mounts are not implemented")
            source = runner._volume_dir(mount["name"])
            options = f"type=bind,source={source},destination={mount['mountPath']}"
            args += ["--mount", options + (",ro=true" if mount.get("readOnly") else "")]
        for key, value in runner._container_env().items():
            args += ["--env", f"{key}={value}"]
        return [*args, image, *container.get("args", [])]

    def start(self, runner: _PodRunner, log: Path) -> Container:
        name = f"flinkmem-kubelet-{runner.name_}-{runner.restarts}"
        _podman("rm", "--force", "--ignore", "--time", "0", name)
        argv = self.argv(runner, name)
        with log.open("ab") as out:
            client = subprocess.Popen(
                [*PODMAN, *argv],
                env={**os.environ, **_podman_env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        container = _PodmanContainer(name, client)
        # The container's main pid, once podman has started it (or the start failed).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = container.inspect()
            if state is not None and state[1] > 0:
                container.id, container.pid = f"podman://{state[0]}", state[1]
                break
            if client.poll() is not None:
                break
            time.sleep(0.1)
        return container


class _PodRunner(threading.Thread):
    """The kubelet's work for one pod bound to one node."""

    def __init__(self, kubelet: Kubelet, pod: Mapping[str, Any], node: Node) -> None:
        super().__init__(name=f"kubelet-{pod['metadata']['name']}", daemon=True)
        self.kubelet = kubelet
        self.rest = kubelet.rest
        self.node = node
        self.name_ = str(pod["metadata"]["name"])
        self.namespace = str(pod["metadata"]["namespace"])
        self.pod = dict(pod)
        self.uid = str(pod["metadata"]["uid"])
        self.dir = kubelet.workdir / "pods" / self.name_
        spec = pod["spec"]
        if len(spec["containers"]) != 1 or spec.get("initContainers"):
            raise HarnessError("only pods with one container and no init containers are implemented")
        self.container: dict[str, Any] = spec["containers"][0]
        if self.container.get("command"):
            raise HarnessError("containers that override the image's entrypoint are not implemented")
        ports = {p["name"]: int(p["containerPort"]) for p in self.container.get("ports", []) if p.get("name")}
        self.readiness = Probe.from_spec(self.container.get("readinessProbe"), ports)
        self.liveness = Probe.from_spec(self.container.get("livenessProbe"), ports)
        self.grace = float(spec.get("terminationGracePeriodSeconds", 30))
        pre_stop = (self.container.get("lifecycle") or {}).get("preStop") or {}
        if pre_stop and set(pre_stop) != {"sleep"}:
            raise HarnessError(f"only the sleep action of preStop hooks is implemented, not {sorted(pre_stop)}")
        self.pre_stop = float(pre_stop["sleep"]["seconds"]) if pre_stop else 0.0
        self.stopping = threading.Event()
        self.wake = threading.Event()  # the pod changed (the kubelet's watch): sync now
        self.lock = threading.Lock()
        self.run_: _Run | None = None
        self.restarts = 0
        self.ready = False
        self.backoff = 0.0
        self.next_start = 0.0
        self.last_state: dict[str, Any] = {}
        self.waiting_reason = "ContainerCreating"
        self.started_at = _now()
        self.transitions: dict[str, str] = {}
        self.posted: dict[str, Any] | None = None
        self.volumes_synced = 0.0
        self.next_relist = 0.0
        self.volumes_ok = False
        self.tokens: dict[str, tuple[bytes, float]] = {}
        self._ready_probe: _Prober | None = None
        self._live_probe: _Prober | None = None

    # -- what tests see

    def view(self) -> PodView:
        with self.lock:
            run = self.run_
            return PodView(
                self.name_,
                self.node.name,
                self.node.address,
                run.container.pid if run else None,
                self.ready and run is not None,
                self.restarts,
                run.log if run else None,
            )

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> int:
        """Sends ``sig`` to everything in the container, as when a container is killed; its main pid."""
        with self.lock:
            if self.run_ is None:
                raise RuntimeError(f"pod {self.name_} has no running container")
            container = self.run_.container
        container.kill_all(sig)
        return container.pid

    # -- the loop

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                if not self._sync():
                    return
                if self.wake.wait(0.25):
                    self.wake.clear()
                    self.next_relist = 0.0
        except Exception as exc:
            logger.exception("kubelet stand-in for pod %s failed", self.name_)
            self.kubelet.failed(f"pod {self.name_}: {exc!r}")
            raise
        finally:
            self._stop_container("the harness stopped", pre_stop=False)

    def _sync(self) -> bool:
        """One round; False once the pod is gone."""
        now = time.monotonic()
        relist = now >= self.next_relist
        if relist:
            self.next_relist = now + PLEG_PERIOD
            if not self._refresh_pod():
                return False
        self._sync_volumes(now)
        if relist:
            self._relist(now)
        if self.run_ is None and self.volumes_ok and now >= self.next_start:
            self._start_container(now)
        if self.run_ is not None:
            self._probe(now)
        self._post_status()
        return True

    def _refresh_pod(self) -> bool:
        try:
            answer = self.rest.get(f"/api/v1/namespaces/{self.namespace}/pods/{self.name_}")
        except Unreachable:
            return True  # the kubelet keeps its containers running while the API server is away
        if answer.status == 404 or (answer.ok and answer.body["metadata"]["uid"] != self.uid):
            self._stop_container("the pod was deleted")
            return False
        if not answer.ok:
            return True
        self.pod = answer.body
        if self.pod["metadata"].get("deletionTimestamp"):
            grace = self.pod["metadata"].get("deletionGracePeriodSeconds", self.grace)
            self._stop_container("the pod is being deleted", grace=float(grace))
            self.ready = False
            self._post_status()
            with contextlib.suppress(Unreachable):
                body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}
                body["preconditions"] = {"uid": self.uid}
                self.rest.delete(f"/api/v1/namespaces/{self.namespace}/pods/{self.name_}", body)
            return False
        return True

    # -- volumes and credentials

    def _volume_dir(self, name: str) -> Path:
        return self.dir / "volumes" / name

    def _sync_volumes(self, now: float) -> None:
        if now < self.volumes_synced + self.kubelet.volume_sync and self.volumes_ok:
            return
        self.volumes_synced = now
        ok = True
        fs_group = (self.pod["spec"].get("securityContext") or {}).get("fsGroup")
        for volume in self.pod["spec"].get("volumes", []):
            target = self._volume_dir(volume["name"])
            if "emptyDir" in volume:
                if not target.exists():
                    # As the kubelet makes an emptyDir: writable by any user, owned by the fsGroup.
                    target.mkdir(parents=True)
                    target.chmod(0o777)
                    if fs_group is not None:
                        os.chown(target, -1, fs_group)
                        target.chmod(0o2777)
                files = None
            elif "secret" in volume:
                files = self._secret_files(volume["secret"])
                mode = int(volume["secret"].get("defaultMode", 0o644))
            elif "configMap" in volume:
                files = self._config_map_files(volume["configMap"])
                mode = int(volume["configMap"].get("defaultMode", 0o644))
            elif "projected" in volume:
                files = self._projected_files(volume["name"], volume["projected"], now)
                mode = int(volume["projected"].get("defaultMode", 0o644))
            else:
                raise HarnessError(
                    f"volume {volume['name']}: only secret, configMap, projected and emptyDir are implemented"
                )
            if files is None:
                # Not readable now: a mounted volume keeps its content, a new one keeps the pod waiting.
                ok = ok and ("emptyDir" in volume or (target / "..data").exists())
            elif write_atomically(target, files, mode, fs_group):
                logger.info("pod %s: volume %s updated", self.name_, volume["name"])
                self.kubelet.record(self.name_, "volume-updated", volume["name"])
        if ok and not self.volumes_ok:
            self._write_kubeconfig()
            self.volumes_ok = True

    def _read(self, path: str) -> dict[str, Any] | None:
        try:
            answer = self.rest.get(path)
        except Unreachable:
            return None
        if not answer.ok:
            if not self.volumes_ok:
                logger.info("pod %s: MountVolume.SetUp waits for %s (%s)", self.name_, path, answer.status)
            return None
        body: dict[str, Any] = answer.body
        return body

    def _secret_files(self, source: Mapping[str, Any]) -> dict[str, bytes] | None:
        secret = self._read(f"/api/v1/namespaces/{self.namespace}/secrets/{source['secretName']}")
        if secret is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        return {item["path"]: data[item["key"]] for item in source["items"]} if source.get("items") else data

    def _config_map_files(self, source: Mapping[str, Any]) -> dict[str, bytes] | None:
        config = self._read(f"/api/v1/namespaces/{self.namespace}/configmaps/{source['name']}")
        if config is None:
            return None
        data = config.get("data") or {}
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        return {item["path"]: data[item["key"]].encode() for item in items}

    def _projected_files(self, volume: str, source: Mapping[str, Any], now: float) -> dict[str, bytes] | None:
        files: dict[str, bytes] = {}
        for part in source.get("sources", []):
            if "serviceAccountToken" in part:
                token = self._token(volume, part["serviceAccountToken"], now)
                if token is None:
                    return None
                files[part["serviceAccountToken"]["path"]] = token
            elif "configMap" in part:
                config_files = self._config_map_files(part["configMap"])
                if config_files is None:
                    return None
                files.update(config_files)
            elif "downwardAPI" in part:
                for item in part["downwardAPI"]["items"]:
                    files[item["path"]] = self._field(item["fieldRef"]["fieldPath"]).encode()
            else:
                raise HarnessError(f"projected volume {volume}: only tokens, configMaps and downwardAPI")
        return files

    def _token(self, volume: str, source: Mapping[str, Any], now: float) -> bytes | None:
        """A ServiceAccount token bound to the pod, renewed after 80 % of its lifetime as the kubelet does."""
        kept = self.tokens.get(volume)
        if kept is not None and now < kept[1]:
            return kept[0]
        seconds = int(source.get("expirationSeconds", 3600))
        spec: dict[str, Any] = {
            "expirationSeconds": seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name_, "uid": self.uid},
        }
        if source.get("audience"):
            spec["audiences"] = [source["audience"]]
        account = self.pod["spec"].get("serviceAccountName", "default")
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        try:
            answer = self.rest.post(f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token", request)
        except Unreachable:
            return kept[0] if kept else None
        if not answer.ok:
            logger.warning("pod %s: token request failed: %s", self.name_, answer.message)
            return kept[0] if kept else None
        token = str(answer.body["status"]["token"]).encode()
        self.tokens[volume] = (token, now + 0.8 * seconds)
        return token

    def _write_kubeconfig(self) -> None:
        """flinkmem's credentials: the token and CA of the pod's ServiceAccount volume, by path."""
        mounts = {m["mountPath"].rstrip("/"): m["name"] for m in self.container.get("volumeMounts", [])}
        volume = mounts.get(SERVICE_ACCOUNT_DIR)
        if volume is None:
            raise HarnessError(f"the container mounts no ServiceAccount volume at {SERVICE_ACCOUNT_DIR}")
        credentials = self._volume_dir(volume)
        cluster = {"server": self.kubelet.server, "certificate-authority": str(credentials / "ca.crt")}
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "plane", "cluster": cluster}],
            "users": [{"name": "pod", "user": {"tokenFile": str(credentials / "token")}}],
            "contexts": [{"name": "pod", "context": {"cluster": "plane", "user": "pod", "namespace": self.namespace}}],
            "current-context": "pod",
        }
        (self.dir / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))

    def _field(self, path: str) -> str:
        fields = {
            "metadata.name": self.name_,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": self.node.name,
            "spec.serviceAccountName": str(self.pod["spec"].get("serviceAccountName", "default")),
            "status.podIP": self.node.address,
            "status.hostIP": self.node.address,
        }
        if path not in fields:
            raise HarnessError(f"fieldRef {path} is not implemented")
        return fields[path]

    def _declared_env(self) -> dict[str, str]:
        """The container's ``env``, values and fieldRefs resolved."""
        env: dict[str, str] = {}
        for item in self.container.get("env", []):
            source = item.get("valueFrom")
            if source is None:
                env[item["name"]] = str(item.get("value", ""))  # the API server drops empty values
            elif "fieldRef" in source:
                env[item["name"]] = self._field(source["fieldRef"]["fieldPath"])
            else:
                raise HarnessError(f"env {item['name']}: only values and fieldRefs are implemented")
        return env

    def _env(self) -> dict[str, str]:
        """The environment of the process runtime: paths under a mountPath point to the pod's directory."""
        mounts = {
            m["mountPath"].rstrip("/"): self._volume_dir(m["name"]) for m in self.container.get("volumeMounts", [])
        }
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir / "home"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "LANG": "C.UTF-8",
        }
        for name, value in self._declared_env().items():
            # The deepest mount a path lies under is the one that holds it.
            for mount in sorted(mounts, key=len, reverse=True):
                if value == mount or value.startswith(mount + "/"):
                    value = str(mounts[mount]) + value[len(mount) :]
                    break
            env[name] = value
        env["KUBECONFIG"] = str(self.dir / "kubeconfig")
        env["FLINKMEM_BIND_ADDRESS"] = self.node.address
        return env

    def _service_env(self) -> dict[str, str]:
        """What the kubelet adds for Services (enableServiceLinks, on by default): each Service of the
        pod's namespace, and the ``kubernetes`` Service, whose address here is the API server's own
        (nothing implements ClusterIPs on this plane)."""
        env: dict[str, str] = {}

        def add(name: str, host: str, ports: list[Mapping[str, Any]]) -> None:
            prefix = name.upper().replace("-", "_")
            env[f"{prefix}_SERVICE_HOST"] = host
            env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
            for port in ports:
                number, protocol = str(port["port"]), str(port.get("protocol", "TCP"))
                if port.get("name"):
                    env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = number
                key = f"{prefix}_PORT_{number}_{protocol}"
                env[key] = f"{protocol.lower()}://{host}:{number}"
                env[f"{key}_PROTO"], env[f"{key}_PORT"], env[f"{key}_ADDR"] = protocol.lower(), number, host
            env[f"{prefix}_PORT"] = f"{str(ports[0].get('protocol', 'TCP')).lower()}://{host}:{ports[0]['port']}"

        if self.pod["spec"].get("enableServiceLinks", True):
            answer = self._read(f"/api/v1/namespaces/{self.namespace}/services")
            for service in (answer or {}).get("items", []):
                ip, ports = service["spec"].get("clusterIP"), service["spec"].get("ports") or []
                if ip and ip != "None" and ports:
                    add(service["metadata"]["name"], ip, ports)
        server = urllib.parse.urlsplit(self.kubelet.server)
        add("kubernetes", str(server.hostname), [{"name": "https", "port": server.port or 443, "protocol": "TCP"}])
        return env

    def _container_env(self) -> dict[str, str]:
        """The environment of a container run from its image: the image's own (the runtime adds it),
        Service links, then the container's ``env``; and where it listens (see the module docstring)."""
        env = {**self._service_env(), **self._declared_env()}
        env["FLINKMEM_BIND_ADDRESS"] = self.node.address
        return env

    # -- the container

    def _start_container(self, now: float) -> None:
        if self.last_state:  # a container ran before: this start is a restart
            self.restarts += 1
        log = self.dir / f"{self.container['name']}-{self.restarts}.log"
        try:
            container = self.kubelet.runtime.start(self, log)
        except ContainerConfigError as exc:
            # As the kubelet: the pod waits (CreateContainerConfigError, ErrImageNeverPull...) and
            # the start is tried again with the back-off.
            self.waiting_reason = exc.reason
            self.next_start = now + max(self.backoff, BACKOFF_INITIAL)
            self.kubelet.record(self.name_, "config-error", f"{exc.reason}: {exc}")
            logger.warning("pod %s: %s: %s", self.name_, exc.reason, exc)
            if self.last_state:
                self.restarts -= 1
            return
        with self.lock:
            self.run_ = _Run(container, now, _now(), log)
            self.ready = False
        # Readiness starts failed, liveness passed; both are first probed after their initial delay.
        ready, live = self.readiness, self.liveness
        self._ready_probe = _Prober(ready, result=False, due=now + ready.initial_delay) if ready else None
        self._live_probe = _Prober(live, result=True, due=now + live.initial_delay) if live else None
        self.kubelet.record(self.name_, "started", str(container.pid))
        logger.info("pod %s: container %s started, pid %s", self.name_, container.id, container.pid)

    def _relist(self, now: float) -> None:
        run = self.run_
        if run is None:
            return
        exited = run.container.poll()
        if exited is None:
            return
        exit_code, reason = exited
        self._exited(run, exit_code, reason or ("Error" if exit_code else "Completed"), now)

    def _exited(self, run: _Run, exit_code: int, reason: str, now: float) -> None:
        with self.lock:
            self.run_ = None
            self.ready = False
        self.last_state = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": run.started_at,
                "finishedAt": _now(),
                "containerID": run.container.id,
            }
        }
        if now - run.started >= BACKOFF_RESET:
            self.backoff = 0.0
        self.next_start = now + self.backoff
        self.waiting_reason = "CrashLoopBackOff" if self.backoff else "ContainerCreating"
        self.backoff = BACKOFF_INITIAL if not self.backoff else min(self.backoff * 2, BACKOFF_MAX)
        self.kubelet.record(self.name_, "exited", str(exit_code))
        logger.info("pod %s: container exited with %s; restart in %.0f s", self.name_, exit_code, self.next_start - now)

    def _probe(self, now: float) -> None:
        run = self.run_
        assert run is not None
        address = self.node.address
        if self._ready_probe is not None and now >= self._ready_probe.due:
            ready = self._ready_probe.run(address, now)
            with self.lock:
                if self.run_ is run and ready != self.ready:
                    self.ready = ready
                    self.kubelet.record(self.name_, "ready" if ready else "not-ready", "")
        elif self._ready_probe is None:
            self.ready = True
        if self._live_probe is not None and now >= self._live_probe.due and not self._live_probe.run(address, now):
            logger.info(
                "pod %s: liveness probe failed %s times; killing the container", self.name_, self._live_probe.failures
            )
            self.kubelet.record(self.name_, "liveness-kill", "")
            self._terminate(run, self.grace)
            self._exited(run, 137, "Error", time.monotonic())

    def _terminate(self, run: _Run, grace: float, pre_stop: bool = True) -> None:
        """As the kubelet stops a container: its preStop hook within the grace period, then SIGTERM to
        its main process only and, after what is left of the grace period (at least 2 s, the
        kubelet's minimum), SIGKILL to everything in it."""
        started = time.monotonic()
        if pre_stop and self.pre_stop:
            time.sleep(min(self.pre_stop, grace))
        sigterm = time.monotonic()
        run.container.stop(max(grace - (sigterm - started), 2.0))
        self.kubelet.record(self.name_, "sigterm-to-exit", f"{time.monotonic() - sigterm:.2f}")

    def _stop_container(self, why: str, grace: float | None = None, pre_stop: bool = True) -> None:
        run = self.run_
        if run is None:
            return
        logger.info("pod %s: stopping the container: %s", self.name_, why)
        started = time.monotonic()
        self._terminate(run, self.grace if grace is None else grace, pre_stop)
        self.kubelet.record(self.name_, "stopped", f"{time.monotonic() - started:.1f}")
        with self.lock:
            self.run_ = None
            self.ready = False

    # -- status

    def _condition(self, kind: str, status: bool) -> dict[str, Any]:
        value = "True" if status else "False"
        key = f"{kind}={value}"
        if key not in self.transitions:
            self.transitions = {k: v for k, v in self.transitions.items() if not k.startswith(kind + "=")}
            self.transitions[key] = _now()
        return {"type": kind, "status": value, "lastTransitionTime": self.transitions[key], "lastProbeTime": None}

    def _status(self) -> dict[str, Any]:
        run = self.run_
        ready = self.ready and run is not None
        state: dict[str, Any]
        if run is not None:
            state = {"running": {"startedAt": run.started_at}, "waiting": None, "terminated": None}
        else:
            state = {"waiting": {"reason": self.waiting_reason}, "running": None, "terminated": None}
        container_status = {
            "name": self.container["name"],
            "image": self.container["image"],
            "imageID": self.kubelet.runtime.image_id(str(self.container["image"])) if run else "",
            "containerID": run.container.id if run else None,
            "ready": ready,
            "started": run is not None,
            "restartCount": self.restarts,
            "state": state,
            "lastState": self.last_state,
        }
        address = self.node.address
        return {
            "phase": "Running" if run is not None or self.last_state else "Pending",
            "hostIP": address,
            "hostIPs": [{"ip": address}],
            "podIP": address,
            "podIPs": [{"ip": address}],
            "startTime": self.started_at,
            "conditions": [
                self._condition("PodReadyToStartContainers", self.volumes_ok),
                self._condition("Initialized", True),
                self._condition("ContainersReady", ready),
                self._condition("Ready", ready),
                self._condition("PodScheduled", True),
            ],
            "containerStatuses": [container_status],
        }

    def _stored_ready(self) -> bool | None:
        for condition in self.pod.get("status", {}).get("conditions") or []:
            if condition.get("type") == "Ready":
                return bool(condition.get("status") == "True")
        return None

    def _post_status(self) -> None:
        status = self._status()
        # As the kubelet's status manager, also put right what someone else changed: the node
        # lifecycle controller marks the pods of a node it lost touch with not ready.
        if status == self.posted and self._stored_ready() == (self.ready and self.run_ is not None):
            return
        try:
            answer = self.rest.strategic_patch(
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name_}/status", {"status": status}
            )
        except Unreachable:
            return
        if answer.ok:
            self.posted = status
            self.pod = answer.body
        elif answer.status != 404:
            logger.warning("pod %s: status update failed: %s", self.name_, answer.message)


@dataclass(frozen=True)
class Drained:
    """What one drain did: the pods it evicted, how often the PodDisruptionBudget said not yet (429),
    and the seconds until every eviction was accepted and until every pod was gone."""

    node: str
    pods: list[str]
    refused: int
    evicted_after: float
    gone_after: float


@dataclass
class _Record:
    at: float
    pod: str
    what: str
    detail: str


@dataclass
class Kubelet:
    """Schedules and runs the pods that ``selector`` picks in ``namespace``, one per node."""

    rest: Rest
    namespace: str
    selector: str
    nodes: Sequence[Node]
    workdir: Path
    server: str
    ca_file: Path
    volume_sync: float = 5.0
    runtime: Runtime = field(default_factory=lambda: ProcessRuntime())
    _runners: dict[str, _PodRunner] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _records: list[_Record] = field(default_factory=list)
    _failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, what: str) -> None:
        with self._lock:
            self._failures.append(what)

    def check(self) -> None:
        """Raises if the harness itself failed (a pod asked for something it does not implement)."""
        with self._lock:
            if self._failures:
                raise HarnessError("; ".join(self._failures))

    def record(self, pod: str, what: str, detail: str) -> None:
        with self._lock:
            self._records.append(_Record(time.monotonic(), pod, what, detail))

    def records(self, since: float = 0.0) -> list[_Record]:
        with self._lock:
            return [r for r in self._records if r.at >= since]

    def start(self) -> None:
        for node in self.nodes:
            self._register(node)
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch, name="kubelet-watch", daemon=True).start()

    def _watch(self) -> None:
        """As the kubelet watches its pods: a deletion (an eviction too) reaches the pod's runner at once,
        not at its next relist, so the container is stopped within moments of the pod's deletion."""
        path = f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={self.selector}"
        version = ""
        while not self._stopping.is_set():
            try:
                if not version:
                    answer = self.rest.get(path)
                    if not answer.ok:
                        raise Unreachable(answer.message)
                    version = answer.body["metadata"]["resourceVersion"]
                for event in self.rest.watch(path, version, seconds=5):
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    meta = event["object"]["metadata"]
                    version = meta.get("resourceVersion", version)
                    runner = self._runners.get(meta.get("name", ""))
                    if runner is not None and (event["type"] == "DELETED" or meta.get("deletionTimestamp")):
                        runner.wake.set()
                    if self._stopping.is_set():
                        break
            except Unreachable:
                self._stopping.wait(0.5)

    def stop(self) -> None:
        self._stopping.set()
        runners = list(self._runners.values())
        for runner in runners:
            runner.stopping.set()
            runner.wake.set()
        for runner in runners:
            runner.join(timeout=60)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.runtime.close()

    def pods(self) -> list[PodView]:
        return sorted((r.view() for r in list(self._runners.values()) if r.is_alive()), key=lambda v: v.name)

    def pod(self, name: str) -> _PodRunner:
        return self._runners[name]

    # -- nodes

    def _register(self, node: Node) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "labels": {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux"},
            },
        }
        answer = self.rest.post("/api/v1/nodes", body)
        if not answer.ok and answer.status != 409:
            raise HarnessError(f"registering node {node.name}: {answer.message}")
        status = {
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": node.address},
                    {"type": "Hostname", "address": node.name},
                ],
                "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "the flinkmem test harness runs this node's pods",
                        "lastHeartbeatTime": _now(),
                        "lastTransitionTime": _now(),
                    }
                ],
            }
        }
        answer = self.rest.strategic_patch(f"/api/v1/nodes/{node.name}/status", status)
        if not answer.ok:
            raise HarnessError(f"node {node.name} status: {answer.message}")
        self._renew(node)

    def _renew(self, node: Node) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}"
        spec = {"holderIdentity": node.name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": _micro_now()}
        try:
            answer = self.rest.merge_patch(path, {"spec": spec})
            if answer.status == 404:
                lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": node.name}}
                self.rest.post(
                    "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {**lease, "spec": spec}
                )
        except Unreachable:
            pass

    # -- scheduling and draining

    def _cordoned(self) -> set[str]:
        answer = self.rest.get("/api/v1/nodes")
        if not answer.ok:
            return {n.name for n in self.nodes}  # not known: schedule nothing this round
        return {n["metadata"]["name"] for n in answer.body["items"] if (n.get("spec") or {}).get("unschedulable")}

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        answer = self.rest.strategic_patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": unschedulable}})
        if not answer.ok:
            raise HarnessError(f"cordoning node {node}: {answer.message}")

    def drain(self, node: str, timeout: float = 300.0) -> Drained:
        """``kubectl drain``: cordons ``node``, evicts each of its pods through the Eviction API (a 429,
        the PodDisruptionBudget saying not now, is tried again every 5 s) and waits until they are gone."""
        started = time.monotonic()
        self.cordon(node)
        field_selector = urllib.parse.quote(f"spec.nodeName={node}")
        listed = self.rest.get(f"/api/v1/namespaces/{self.namespace}/pods?fieldSelector={field_selector}")
        if not listed.ok:
            raise HarnessError(f"listing the pods of node {node}: {listed.message}")
        pods = [(p["metadata"]["name"], p["metadata"]["uid"]) for p in listed.body["items"]]
        refused = 0
        deadline = started + timeout
        for name, uid in pods:
            eviction = {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": name, "namespace": self.namespace},
                "deleteOptions": {"preconditions": {"uid": uid}},
            }
            while True:
                answer = self.rest.post(f"/api/v1/namespaces/{self.namespace}/pods/{name}/eviction", eviction)
                if answer.ok or answer.status == 404:
                    break
                if answer.status != 429 or time.monotonic() > deadline:
                    raise HarnessError(f"evicting pod {name}: HTTP {answer.status} {answer.message}")
                refused += 1
                time.sleep(5.0)
        evicted = time.monotonic()
        for name, uid in pods:
            while True:
                answer = self.rest.get(f"/api/v1/namespaces/{self.namespace}/pods/{name}")
                if answer.status == 404 or (answer.ok and answer.body["metadata"]["uid"] != uid):
                    break
                if time.monotonic() > deadline:
                    raise HarnessError(f"pod {name} of the drained node {node} still there after {timeout:.0f} s")
                time.sleep(0.25)
        done = time.monotonic()
        return Drained(node, [n for n, _ in pods], refused, evicted - started, done - started)

    def _loop(self) -> None:
        next_lease = time.monotonic() + LEASE_PERIOD
        while not self._stopping.wait(0.5):
            if time.monotonic() >= next_lease:
                next_lease = time.monotonic() + LEASE_PERIOD
                for node in self.nodes:
                    self._renew(node)
            try:
                self._schedule()
            except Unreachable:
                continue
            except Exception:
                logger.exception("the scheduler stand-in failed a round")

    def _schedule(self) -> None:
        answer: Answer = self.rest.get(f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={self.selector}")
        if not answer.ok:
            return
        for name in [n for n, r in self._runners.items() if not r.is_alive()]:
            del self._runners[name]
        by_node = {r.node.name: r for r in self._runners.values()}
        for pod in answer.body["items"]:
            meta, spec = pod["metadata"], pod["spec"]
            if meta.get("deletionTimestamp") and not spec.get("nodeName"):
                continue
            node_name = spec.get("nodeName")
            if node_name is None:
                cordoned = self._cordoned()
                free = [n for n in self.nodes if n.name not in by_node and n.name not in cordoned]
                if not free:
                    continue
                binding = {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": meta["name"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": free[0].name},
                }
                bound = self.rest.post(f"/api/v1/namespaces/{self.namespace}/pods/{meta['name']}/binding", binding)
                if not bound.ok:
                    continue
                pod = self.rest.get(f"/api/v1/namespaces/{self.namespace}/pods/{meta['name']}").body
                node_name = free[0].name
            node = next((n for n in self.nodes if n.name == node_name), None)
            if node is None or meta["name"] in self._runners:
                continue
            runner = _PodRunner(self, pod, node)
            self._runners[meta["name"]] = runner
            by_node[node.name] = runner
            runner.start()
