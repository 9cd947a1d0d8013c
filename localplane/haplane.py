"""The HA plane: a control plane with cert-manager, in a network namespace of its own.

What ``make cluster-up`` starts on 127.0.0.1 cannot route a webhook call through a Service: the API
server refuses loopback addresses in EndpointSlices. This plane runs in a new network namespace
(:mod:`localplane.netns`) whose ``lo`` carries TEST-NET-1 addresses, so Services can have real
endpoints:

- etcd on 127.0.0.1 (of the namespace), kube-apiserver on 192.0.2.201:6443 with
  ``--enable-aggregator-routing=true`` (webhook calls go to a ready endpoint of the Service, not to
  its ClusterIP, which nothing implements here), kube-controller-manager with all its controllers;
- cert-manager's controller and CA injector (``make tools`` builds them; hack/cert-manager) and
  cert-manager's CRDs from the same release;
- 192.0.2.211-213 left free for the nodes of :mod:`localplane.kubelet`, which runs flinkmem's pods.

:func:`ha_plane` starts it all, with the calling thread inside the namespace, and stops it when the
``with`` block ends. Everything started from that thread (kubectl, helm, flinkmem) is inside too, and
so are the sockets it opens. The plane outside (``make cluster-up``) is not touched.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from localplane.controlplane import (
    Cluster,
    ControlPlaneError,
    Layout,
    _apiserver_args,
    _b64,
    _binary,
    _etcd_args,
    _get,
    _kcm_args,
    _log_tail,
    _spawn,
    _ssl_context,
    _stop_pid,
    _wait,
    _write_private,
    create_pki,
    kubectl_binary,
    mint_client_cert,
    tool_dir,
    write_kubeconfig,
)
from localplane.netns import NetNamespace, create
from localplane.rest import Rest

__all__ = ["APISERVER_ADDRESS", "NODE_ADDRESSES", "HaPlane", "ha_plane"]

APISERVER_ADDRESS = "192.0.2.201"
APISERVER_PORT = 6443
NODE_ADDRESSES = ("192.0.2.211", "192.0.2.212", "192.0.2.213")
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
CERT_MANAGER_NAMESPACE = "cert-manager"


@dataclass
class HaPlane:
    """The running plane: ``cluster`` is the admin's handle (kubectl, Python client), ``rest`` the same
    identity as a plain JSON client, ``logs`` where every component writes."""

    netns: NetNamespace
    layout: Layout
    cluster: Cluster
    rest: Rest
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _argv: dict[str, list[str]] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.layout.logs

    @property
    def server(self) -> str:
        return self.cluster.server

    def _start(self, name: str, argv: list[str]) -> None:
        self._argv[name] = argv
        self._procs[name] = _spawn(name, argv, self.layout.logs, tie_to_parent=True)

    def _stop(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            _stop_pid(proc.pid, self._argv[name][0])
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def running(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.poll() is None

    def check(self) -> None:
        """Raises if a component exited (the API server only counts while it is meant to run)."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                log = self.layout.logs / f"{name}.log"
                raise ControlPlaneError(f"{name} exited with {proc.returncode}; {log} ends with:\n{_log_tail(log)}")

    def apiserver_ready(self) -> bool:
        return _get(f"{self.server}/readyz", _ssl_context(self.layout), timeout=1.0) == (200, "ok")

    def stop_apiserver(self) -> None:
        """SIGTERM to kube-apiserver (SIGKILL after 10 s), as a control-plane upgrade would stop it."""
        self._stop("kube-apiserver")

    def start_apiserver(self) -> None:
        """kube-apiserver again, with the flags and the data it had; returns once /readyz says ok."""
        self._start("kube-apiserver", self._argv["kube-apiserver"])
        _wait("kube-apiserver /readyz", self.apiserver_ready, self._procs, self.layout)

    def stop(self) -> None:
        for name in reversed(list(self._procs)):
            self._stop(name)


def _cert_manager_crds(plane: HaPlane) -> None:
    crds = tool_dir() / "cert-manager-crds.yaml"
    if not crds.exists():
        raise ControlPlaneError(f"{crds} is missing: run `make tools` first (it builds cert-manager)")
    plane.cluster.kubectl("apply", "--server-side", "-f", str(crds))
    plane.cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))


def _start_plane(plane: HaPlane) -> None:
    layout = plane.layout
    pki = layout.pki
    plane._start("etcd", _etcd_args(_binary("etcd"), layout, ETCD_CLIENT_PORT, ETCD_PEER_PORT))
    etcd_health = f"http://127.0.0.1:{ETCD_CLIENT_PORT}/health"
    _wait("etcd /health", lambda: _get(etcd_health)[0] == 200, plane._procs, layout)

    apiserver = _apiserver_args(
        _binary("kube-apiserver"), layout, ETCD_CLIENT_PORT, APISERVER_PORT, address=APISERVER_ADDRESS
    )
    # Webhook calls (and aggregated APIs) go to a ready endpoint of the Service, as kube-proxy would
    # send them; there is no kube-proxy to implement ClusterIPs here.
    plane._start("kube-apiserver", [*apiserver, "--enable-aggregator-routing=true"])
    _wait("kube-apiserver /readyz", plane.apiserver_ready, plane._procs, layout)

    ca_pem = pki.ca_cert.read_bytes()
    kcm_cert, kcm_key = mint_client_cert(pki.dir, "system:kube-controller-manager")
    kcm_user = {"client-certificate-data": _b64(kcm_cert), "client-key-data": _b64(kcm_key)}
    write_kubeconfig(layout.kcm_kubeconfig, server=plane.server, ca_pem=ca_pem, user=kcm_user)
    plane._start("kube-controller-manager", _kcm_args(_binary("kube-controller-manager"), layout))
    sa_url = f"{plane.server}/api/v1/namespaces/default/serviceaccounts/default"
    ctx = _ssl_context(layout)
    _wait("the default ServiceAccount", lambda: _get(sa_url, ctx)[0] == 200, plane._procs, layout)

    _cert_manager_crds(plane)
    plane.cluster.kubectl("create", "namespace", CERT_MANAGER_NAMESPACE)
    # cert-manager runs as a cluster administrator here; its chart's RBAC is not what is under test.
    cm_cert, cm_key = mint_client_cert(pki.dir, "cert-manager", ["system:masters"])
    cm_kubeconfig = layout.root / "cert-manager.kubeconfig"
    cm_user = {"client-certificate-data": _b64(cm_cert), "client-key-data": _b64(cm_key)}
    write_kubeconfig(cm_kubeconfig, server=plane.server, ca_pem=ca_pem, user=cm_user)
    plane._start(
        "cert-manager-controller",
        [
            str(_binary("cert-manager-controller")),
            f"--kubeconfig={cm_kubeconfig}",
            f"--cluster-resource-namespace={CERT_MANAGER_NAMESPACE}",
            "--v=2",
        ],
    )
    plane._start("cert-manager-cainjector", [str(_binary("cert-manager-cainjector")), f"--kubeconfig={cm_kubeconfig}"])


@contextlib.contextmanager
def ha_plane(root: Path) -> Iterator[HaPlane]:
    """The HA plane, its files under ``root``; the calling thread stays inside its network namespace
    until the ``with`` block ends, then everything is stopped and the thread is back home."""
    netns = create([APISERVER_ADDRESS, *NODE_ADDRESSES])
    try:
        with netns.entered():
            layout = Layout(root)
            layout.logs.mkdir(parents=True, exist_ok=True)
            layout.data.mkdir(parents=True, exist_ok=True)
            pki = create_pki(layout.pki.dir, [APISERVER_ADDRESS])
            admin_cert, admin_key = mint_client_cert(pki.dir, "admin", ["system:masters"])
            (pki.dir / "admin.crt").write_bytes(admin_cert)
            _write_private(pki.dir / "admin.key", admin_key)
            server = f"https://{APISERVER_ADDRESS}:{APISERVER_PORT}"
            admin = {"client-certificate-data": _b64(admin_cert), "client-key-data": _b64(admin_key)}
            write_kubeconfig(layout.kubeconfig, server=server, ca_pem=pki.ca_cert.read_bytes(), user=admin)
            cluster = Cluster(
                layout.kubeconfig,
                server,
                pki.ca_cert,
                kubectl_bin=kubectl_binary(),
                pki_dir=pki.dir,
                scratch_dir=root,
            )
            rest = Rest(server, pki.ca_cert, pki.dir / "admin.crt", pki.dir / "admin.key")
            plane = HaPlane(netns, layout, cluster, rest)
            try:
                _start_plane(plane)
                yield plane
            finally:
                plane.stop()
    finally:
        netns.close()
