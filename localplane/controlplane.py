"""A real, local Kubernetes control plane for the e2e tests and the demo: etcd, kube-apiserver and
kube-controller-manager on 127.0.0.1, built by ``make tools`` (hack/tools.sh).

Command line (what ``make cluster-up`` / ``cluster-down`` / ``cluster-status`` run)::

    python -m localplane up|down|status

Everything lives in ``.cluster/`` at the repository root:

- ``kubeconfig``: admin kubeconfig (client certificate in group ``system:masters``)
- ``pki/``: ``ca.crt``/``ca.key`` (signs serving and client certificates; see :func:`mint_client_cert`),
  the apiserver serving pair and the service-account signing key
- ``logs/``: one log per component; kept after ``down`` for post-mortems
- ``data/``: etcd's data; removed by ``down``
- ``state.json``: ports and PIDs of the processes ``up`` started; ``down`` stops exactly those

For tests, :func:`session_cluster` yields a :class:`Cluster`: the user's ``$KUBECONFIG`` if set, else the
control plane already running in ``.cluster/``, else one it starts and later stops.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from flinkmem.runtime.lifecycle import die_with_parent

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = REPO_ROOT / ".cluster"
TOOLS_SCRIPT = REPO_ROOT / "hack" / "tools.sh"
VERSIONS_FILE = REPO_ROOT / "hack" / "versions.env"

SERVICE_CIDR = "10.0.0.0/24"
CONTEXT = "flinkmem-local"
START_TIMEOUT = 60.0
START_ATTEMPTS = 3
STOP_TIMEOUT = 10.0

# Order matters: started in this order, stopped in reverse.
# The common name of the client certificate kube-apiserver presents to admission webhooks.
WEBHOOK_CLIENT_CN = "kube-apiserver-webhook-client"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")

T = TypeVar("T")


class ControlPlaneError(RuntimeError):
    """The local control plane could not be started, reached or stopped."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; unlike its base class, the message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


class _ComponentExited(ControlPlaneError):
    """A component process ended while the control plane was starting."""


# --------------------------------------------------------------------------------------------------
# The handle tests get


@dataclass(frozen=True)
class Cluster:
    """How to reach one Kubernetes cluster: the local control plane or any cluster a kubeconfig names.

    ``kubeconfig`` is what both kubectl and the Python client use; ``server`` and ``ca_file`` are its
    current context's API server URL and CA bundle (for code that talks HTTPS itself, such as a
    webhook configuration's ``caBundle`` or a raw ``ssl`` client). ``pki_dir`` is set only for the
    local control plane, whose CA can mint more client identities (:meth:`user`).
    """

    kubeconfig: Path
    server: str
    ca_file: Path
    kubectl_bin: str = "kubectl"
    pki_dir: Path | None = None
    scratch_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    @property
    def is_local(self) -> bool:
        """True for the control plane in ``.cluster/`` (no nodes: Pods stay Pending)."""
        return self.pki_dir is not None

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with this cluster's kubeconfig; text output captured.

        With ``check`` (the default) a non-zero exit raises :class:`KubectlError` (a
        :class:`subprocess.CalledProcessError` whose message includes kubectl's stderr).
        """
        cmd = [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def api_client(self) -> ApiClient:
        """A new ``kubernetes.client.ApiClient`` for this kubeconfig (close it, or use it in ``with``)."""
        from kubernetes import config

        client: ApiClient = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        return client

    def with_token(self, token: str, name: str) -> Cluster:
        """The same cluster seen by whoever holds a bearer ``token`` (e.g. from the TokenRequest API).

        Writes a kubeconfig named after ``name`` into ``scratch_dir``.
        """
        path = self.scratch_dir / f"kubeconfig-{name}"
        write_kubeconfig(path, server=self.server, ca_pem=self.ca_file.read_bytes(), user={"token": token})
        return replace(self, kubeconfig=path)

    def user(self, name: str, groups: Sequence[str] = ()) -> Cluster:
        """The same cluster as user ``name`` in ``groups``, by a client certificate from the local CA.

        Only for the local control plane; other clusters' CAs are not ours to sign with.
        """
        if self.pki_dir is None:
            raise ControlPlaneError("minting client certificates needs the local control plane's CA")
        cert, key = mint_client_cert(self.pki_dir, name, groups)
        path = self.scratch_dir / f"kubeconfig-user-{name}"
        write_kubeconfig(
            path,
            server=self.server,
            ca_pem=self.ca_file.read_bytes(),
            user={"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
        )
        return replace(self, kubeconfig=path)


def wait_until(check: Callable[[], T | None], *, timeout: float = 30.0, what: str = "a condition") -> T:
    """Poll ``check`` every 0.2 s until it returns something other than None/False; return that.

    Kubernetes is eventually consistent (controllers, informers, discovery caches); tests wait for
    the state they expect instead of sleeping.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(path: Path, *, server: str, ca_pem: bytes, user: dict[str, str]) -> Path:
    """Write a single-context kubeconfig with everything embedded; readable by its owner only."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [{"name": CONTEXT, "user": user}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        "current-context": CONTEXT,
    }
    _write_private(path, yaml.safe_dump(doc, sort_keys=False).encode())
    return path


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# Binaries


def tool_dir() -> Path:
    """Where ``make tools`` puts the pinned binaries; ``$FLINKMEM_BIN_DIR`` overrides it."""
    override = os.environ.get("FLINKMEM_BIN_DIR")
    if override:
        return Path(override)
    out = subprocess.run(
        ["bash", str(TOOLS_SCRIPT), "--dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(out)


def pinned_versions() -> dict[str, str]:
    """The versions in hack/versions.env, with the same environment overrides hack/tools.sh honours."""
    versions: dict[str, str] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isupper() and not line.startswith("#"):
            versions[key] = os.environ.get(key) or value.strip()
    return versions


def _binary(name: str) -> Path:
    path = tool_dir() / name
    if not os.access(path, os.X_OK):
        raise ControlPlaneError(f"{path} is missing: run `make tools` first (it builds the control plane)")
    return path


def kubectl_binary() -> str:
    """``$FLINKMEM_KUBECTL``, else the kubectl built with the control plane, else kubectl on PATH."""
    override = os.environ.get("FLINKMEM_KUBECTL")
    if override:
        return override
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        built = tool_dir() / "kubectl"
        if os.access(built, os.X_OK):
            return str(built)
    return "kubectl"


# --------------------------------------------------------------------------------------------------
# PKI


@dataclass(frozen=True)
class Pki:
    """Paths of the certificates and keys of one local control plane."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    @property
    def webhook_client_kubeconfig(self) -> Path:
        """The client certificate kube-apiserver presents to every admission webhook it calls."""
        return self.dir / "webhook-client.kubeconfig"

    @property
    def admission_config(self) -> Path:
        return self.dir / "admission.yaml"

    @property
    def webhook_client(self) -> tuple[Path, Path]:
        """That certificate and its key as files, for tests that call a webhook as the API server would."""
        return self.dir / "webhook-client.crt", self.dir / "webhook-client.key"


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue_certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    sans: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    """A certificate for `key`, signed by `issuer` (certificate and key), or self-signed without one."""
    now = dt.datetime.now(dt.UTC)
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    key_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    builder = builder.add_extension(key_usage, critical=True)
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _load_ca(pki_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    pki = Pki(pki_dir)
    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ControlPlaneError(f"{pki.ca_key} is not an EC key")
    return cert, key


def mint_client_cert(pki_dir: Path, user: str, groups: Sequence[str] = ()) -> tuple[bytes, bytes]:
    """A client certificate (PEM cert, PEM key) for ``user`` in ``groups``, signed by the local CA.

    The apiserver trusts this CA for client authentication (``--client-ca-file``), so the result
    authenticates as ``user``; what it may do is up to RBAC. The key is RSA, as kubeadm and kind
    issue them: the Kubernetes client bundled in Flink cannot read an ECDSA client key.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = issue_certificate(_name(user, groups), key, _load_ca(pki_dir), usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def mint_serving_cert(pki_dir: Path, hosts: Sequence[str]) -> tuple[bytes, bytes]:
    """A TLS serving certificate (PEM cert, PEM key) for ``hosts`` (DNS names or IPs), from the local CA.

    Useful for webhook servers the apiserver must trust: give it ``ca.crt`` as the ``caBundle``.
    """
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_certificate(_name(hosts[0]), key, _load_ca(pki_dir), usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans)
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def create_pki(pki_dir: Path, extra_hosts: Sequence[str] = ()) -> Pki:
    """A fresh CA, apiserver serving pair and service-account signing key in ``pki_dir``.

    The serving certificate is valid for loopback, the `kubernetes` Service and ``extra_hosts``.
    """
    pki = Pki(pki_dir)
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = issue_certificate(_name("flinkmem-local-ca"), ca_key, None, ca=True)
    _write_private(pki.ca_key, _pem_key(ca_key))
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    cert, key = mint_serving_cert(
        pki_dir,
        [
            "localhost",
            "127.0.0.1",
            str(next(ipaddress.ip_network(SERVICE_CIDR).hosts())),
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            *extra_hosts,
        ],
    )
    pki.serving_cert.write_bytes(cert)
    _write_private(pki.serving_key, key)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(pki.sa_key, _pem_key(sa_key))
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    _write_admission_config(pki)
    return pki


def _write_admission_config(pki: Pki) -> None:
    """kube-apiserver's AdmissionConfiguration: a client certificate (signed by the plane's CA, common name
    WEBHOOK_CLIENT_CN) for every webhook it calls, so that a webhook can require it (`flinkmem serve
    --client-ca-file`). The user `*` applies to every webhook host."""
    cert, key = mint_client_cert(pki.dir, WEBHOOK_CLIENT_CN)
    pki.webhook_client[0].write_bytes(cert)
    _write_private(pki.webhook_client[1], key)
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{"name": "*", "user": {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}}],
    }
    _write_private(pki.webhook_client_kubeconfig, yaml.safe_dump(kubeconfig).encode())
    webhook = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(pki.webhook_client_kubeconfig),
    }
    admission = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {"name": "ValidatingAdmissionWebhook", "configuration": webhook},
            {"name": "MutatingAdmissionWebhook", "configuration": webhook},
        ],
    }
    pki.admission_config.write_text(yaml.safe_dump(admission))


# --------------------------------------------------------------------------------------------------
# Processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(name: str, argv: list[str], logs: Path, *, tie_to_parent: bool) -> subprocess.Popen[bytes]:
    log: IO[bytes]
    with (logs / f"{name}.log").open("ab") as log:
        log.write(f"\n==== {dt.datetime.now(dt.UTC).isoformat()} {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # SIGKILL when this process dies, to every component at once: a kube-apiserver whose etcd is
            # already gone would linger in its graceful shutdown, and the data is throw-away anyway.
            preexec_fn=die_with_parent if tie_to_parent else None,
        )


def _pid_runs(pid: int, binary: str) -> bool:
    """Whether ``pid`` is alive and still the ``binary`` we started (PIDs get reused)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return Path(exe.removesuffix(" (deleted)")).name == Path(binary).name


def _stop_pid(pid: int, binary: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group of ``pid`` (each component leads its own), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if _gone(pid, binary):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not _gone(pid, binary):
            time.sleep(0.05)


def _gone(pid: int, binary: str) -> bool:
    """Whether ``pid`` no longer runs ``binary``; reaps it when it is our own child."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return not _pid_runs(pid, binary)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------------------
# The local control plane


@dataclass(frozen=True)
class Layout:
    """The files of one control plane under a state directory (``.cluster/`` by default)."""

    root: Path = STATE_DIR

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def kcm_kubeconfig(self) -> Path:
        return self.root / "pki" / "kube-controller-manager.kubeconfig"

    @property
    def pki(self) -> Pki:
        return Pki(self.root / "pki")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def users_lock(self) -> Path:
        return self.root / ".users"


@contextlib.contextmanager
def _flock(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)


def _read_state(layout: Layout) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(layout.state.read_text())
    except (OSError, ValueError):
        return None
    return state


def _ssl_context(layout: Layout) -> ssl.SSLContext:
    """TLS as the admin user: the local CA for the server, the admin client pair from the kubeconfig."""
    ctx = ssl.create_default_context(cafile=str(layout.pki.ca_cert))
    ctx.load_cert_chain(str(layout.pki.dir / "admin.crt"), str(layout.pki.dir / "admin.key"))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except (OSError, ValueError) as err:
        return 0, str(err)


def healthy(layout: Layout = Layout()) -> bool:
    """Whether the control plane recorded in ``layout`` answers /readyz with ok and all its processes run."""
    state = _read_state(layout)
    if state is None or not layout.kubeconfig.exists():
        return False
    if not all(_pid_runs(p["pid"], p["binary"]) for p in state["processes"].values()):
        return False
    try:
        ctx = _ssl_context(layout)
    except (OSError, ssl.SSLError):
        return False
    return _get(f"{state['server']}/readyz", ctx) == (200, "ok")


def _wait(what: str, check: Any, procs: dict[str, subprocess.Popen[bytes]], layout: Layout) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise _ComponentExited(
                    f"{name} exited with {proc.returncode} while waiting for {what}; "
                    f"{layout.logs / (name + '.log')} ends with:\n{_log_tail(layout.logs / (name + '.log'))}"
                )
        if check():
            return
        time.sleep(0.1)
    raise ControlPlaneError(f"timed out after {START_TIMEOUT:.0f} s waiting for {what}; logs in {layout.logs}")


def _etcd_args(binary: Path, layout: Layout, client: int, peer: int) -> list[str]:
    return [
        str(binary),
        "--name=flinkmem",
        f"--data-dir={layout.data / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=flinkmem=http://127.0.0.1:{peer}",
        "--unsafe-no-fsync=true",
        # A single member elects itself after one election timeout: keep it short (default 1 s).
        "--heartbeat-interval=20",
        "--election-timeout=100",
        "--log-level=warn",
    ]


def _apiserver_args(binary: Path, layout: Layout, etcd_client: int, port: int, address: str = "127.0.0.1") -> list[str]:
    """Flags of kube-apiserver serving on ``address``:``port``.

    On loopback nothing can reach the `kubernetes` Service, so its endpoints are left alone;
    on any other address the API server maintains them as in a real cluster.
    """
    pki = layout.pki
    reconciler = ["--endpoint-reconciler-type=none"] if ipaddress.ip_address(address).is_loopback else []
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{etcd_client}",
        f"--bind-address={address}",
        f"--advertise-address={address}",
        f"--secure-port={port}",
        f"--cert-dir={layout.data / 'apiserver'}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--admission-control-config-file={pki.admission_config}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        *reconciler,
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _kcm_args(binary: Path, layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        str(binary),
        f"--kubeconfig={layout.kcm_kubeconfig}",
        "--leader-elect=false",
        "--secure-port=0",
        # Each controller acts as its own ServiceAccount, as in real clusters: admission webhooks see
        # e.g. system:serviceaccount:kube-system:replicaset-controller creating Pods.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--v=1",
    ]


def up(layout: Layout = Layout(), *, tie_to_parent: bool = False, owner_pid: int | None = None) -> float:
    """Start etcd, kube-apiserver and kube-controller-manager unless they already run; return seconds taken.

    Returns 0.0 when a healthy control plane was already up. Stale leftovers of a crashed run are
    stopped first. With ``tie_to_parent`` the processes get SIGTERM when the calling process dies;
    ``owner_pid`` is recorded so that a later session can tell an abandoned control plane.
    """
    with _flock(layout.lock):
        if healthy(layout):
            return 0.0
        _down_locked(layout)
        started = time.monotonic()
        binaries = {name: _binary(name) for name in COMPONENTS}
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                _start(layout, binaries, tie_to_parent=tie_to_parent, owner_pid=owner_pid)
                return time.monotonic() - started
            except _ComponentExited as err:
                _down_locked(layout)
                # Most likely a port taken between choosing it and binding it: choose again.
                if attempt == START_ATTEMPTS:
                    raise ControlPlaneError(str(err)) from err
                print(f"retrying the control plane start: {err}", file=sys.stderr)
            except BaseException:
                _down_locked(layout)
                raise
        raise AssertionError("unreachable")


def _start(layout: Layout, binaries: dict[str, Path], *, tie_to_parent: bool, owner_pid: int | None) -> None:
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.data.mkdir(parents=True, exist_ok=True)
    pki = create_pki(layout.pki.dir)
    ca_pem = pki.ca_cert.read_bytes()
    admin_cert, admin_key = mint_client_cert(pki.dir, "admin", ["system:masters"])
    (pki.dir / "admin.crt").write_bytes(admin_cert)
    _write_private(pki.dir / "admin.key", admin_key)
    kcm_cert, kcm_key = mint_client_cert(pki.dir, "system:kube-controller-manager")

    ports = {"etcd-client": _free_port(), "etcd-peer": _free_port(), "apiserver": _free_port()}
    server = f"https://127.0.0.1:{ports['apiserver']}"
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def launch(name: str, argv: list[str]) -> None:
        procs[name] = _spawn(name, argv, layout.logs, tie_to_parent=tie_to_parent)
        state = {
            "server": server,
            "ports": ports,
            "owner_pid": owner_pid,
            "started_at": dt.datetime.now(dt.UTC).isoformat(),
            "processes": {n: {"pid": p.pid, "binary": str(binaries[n])} for n, p in procs.items()},
        }
        _write_private(layout.state, json.dumps(state, indent=2).encode())

    launch("etcd", _etcd_args(binaries["etcd"], layout, ports["etcd-client"], ports["etcd-peer"]))
    etcd_health = f"http://127.0.0.1:{ports['etcd-client']}/health"
    _wait("etcd /health", lambda: _get(etcd_health)[0] == 200, procs, layout)

    launch(
        "kube-apiserver",
        _apiserver_args(binaries["kube-apiserver"], layout, ports["etcd-client"], ports["apiserver"]),
    )
    ctx = _ssl_context(layout)
    _wait("kube-apiserver /readyz", lambda: _get(f"{server}/readyz", ctx) == (200, "ok"), procs, layout)

    kcm_user = {"client-certificate-data": _b64(kcm_cert), "client-key-data": _b64(kcm_key)}
    write_kubeconfig(layout.kcm_kubeconfig, server=server, ca_pem=ca_pem, user=kcm_user)
    launch("kube-controller-manager", _kcm_args(binaries["kube-controller-manager"], layout))
    # Pods need their namespace's `default` ServiceAccount (ServiceAccount admission is on).
    sa_url = f"{server}/api/v1/namespaces/default/serviceaccounts/default"
    _wait("the default ServiceAccount", lambda: _get(sa_url, ctx)[0] == 200, procs, layout)

    admin_user = {"client-certificate-data": _b64(admin_cert), "client-key-data": _b64(admin_key)}
    write_kubeconfig(layout.kubeconfig, server=server, ca_pem=ca_pem, user=admin_user)


def _down_locked(layout: Layout) -> bool:
    state = _read_state(layout)
    stopped = False
    if state is not None:
        for name in reversed(COMPONENTS):
            proc = state["processes"].get(name)
            if proc is not None and _pid_runs(proc["pid"], proc["binary"]):
                _stop_pid(proc["pid"], proc["binary"])
                stopped = True
    for path in (layout.kubeconfig, layout.state):
        path.unlink(missing_ok=True)
    for directory in (layout.data, layout.pki.dir):
        shutil.rmtree(directory, ignore_errors=True)
    return stopped


def down(layout: Layout = Layout()) -> bool:
    """Stop every process ``up`` recorded and remove data, PKI and kubeconfig (logs stay).

    Returns whether any process was still running.
    """
    with _flock(layout.lock):
        return _down_locked(layout)


# --------------------------------------------------------------------------------------------------
# pytest support


def _kubeconfig_endpoint(kubeconfig: str, scratch: Path) -> tuple[str, Path]:
    """The current context's server URL and a CA bundle file for it (first file of a KUBECONFIG list)."""
    path = Path(kubeconfig.split(os.pathsep)[0]).expanduser()
    doc = yaml.safe_load(path.read_text())
    context_name = doc.get("current-context")
    context = next(c["context"] for c in doc["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    if "certificate-authority-data" in cluster:
        ca = scratch / "external-ca.crt"
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    elif "certificate-authority" in cluster:
        ca = (path.parent / cluster["certificate-authority"]).resolve()
    else:
        raise ControlPlaneError(f"{path}: context {context_name} has no CA (insecure clusters are not supported)")
    return str(cluster["server"]), ca


@contextlib.contextmanager
def session_cluster(scratch_dir: Path, layout: Layout = Layout()) -> Iterator[Cluster]:
    """The cluster a test session runs against, for the duration of the ``with`` block.

    1. ``$KUBECONFIG`` if set to anything but ``.cluster/kubeconfig`` (e.g. a kind cluster): used as
       is, never started or stopped.
    2. Else the local control plane in ``.cluster/`` if it is up (``make cluster-up``): used, left up.
    3. Else a local control plane started here, stopped when the block ends (and, should this
       process die, by SIGTERM from the kernel).

    While the block runs, the session holds a shared lock on ``.cluster/.users``: a session that
    started the control plane waits for other sessions using it before stopping it.
    """
    kubectl = kubectl_binary()
    external = os.environ.get("KUBECONFIG")
    if external and Path(external).resolve() != layout.kubeconfig.resolve():
        server, ca = _kubeconfig_endpoint(external, scratch_dir)
        yield Cluster(Path(external), server, ca, kubectl_bin=kubectl, scratch_dir=scratch_dir)
        return

    users = os.open(_ensure_parent(layout.users_lock), os.O_RDWR | os.O_CREAT, 0o600)
    started_here = False
    try:
        fcntl.flock(users, fcntl.LOCK_SH)
        with _flock(layout.lock):
            state = _read_state(layout)
            owner = state.get("owner_pid") if state else None
            if owner is not None and not _pid_alive(owner):
                _down_locked(layout)  # left behind by a session that died
        seconds = up(layout, tie_to_parent=True, owner_pid=os.getpid())
        started_here = seconds > 0
        if started_here:
            print(f"\nlocal control plane started in {seconds:.1f} s", file=sys.stderr)
        state = _read_state(layout)
        if state is None:
            raise ControlPlaneError(f"{layout.state} vanished: was the control plane stopped meanwhile?")
        yield Cluster(
            layout.kubeconfig,
            state["server"],
            layout.pki.ca_cert,
            kubectl_bin=kubectl,
            pki_dir=layout.pki.dir,
            scratch_dir=scratch_dir,
        )
    finally:
        if started_here:
            fcntl.flock(users, fcntl.LOCK_UN)
            _wait_for_other_users(users)
            down(layout)
        os.close(users)


def _ensure_parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def _wait_for_other_users(fd: int) -> None:
    notified = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not notified:
                print("\nwaiting for other test sessions to finish with the local control plane", file=sys.stderr)
                notified = True
            time.sleep(1.0)


# --------------------------------------------------------------------------------------------------
# Command line


def _status(layout: Layout) -> int:
    state = _read_state(layout)
    if state is None:
        print("down")
        return 0
    ok = healthy(layout)
    print(f"{'up' if ok else 'unhealthy'}: {state['server']}  kubeconfig {layout.kubeconfig}")
    for name, proc in state["processes"].items():
        alive = "running" if _pid_runs(proc["pid"], proc["binary"]) else "gone"
        print(f"  {name:<24} pid {proc['pid']:<8} {alive}")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localplane", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    layout = Layout()
    try:
        if args.command == "up":
            seconds = up(layout)
            if seconds:
                print(f"control plane ready in {seconds:.1f} s", file=sys.stderr)
            else:
                print("control plane already up", file=sys.stderr)
            print(layout.kubeconfig)
            return 0
        if args.command == "down":
            print("stopped" if down(layout) else "nothing was running", file=sys.stderr)
            return 0
        return _status(layout)
    except ControlPlaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
