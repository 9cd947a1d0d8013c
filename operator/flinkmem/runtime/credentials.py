"""Where flinkmem's Kubernetes API credentials come from: the pod's ServiceAccount, else a kubeconfig.

flinkmem's own loader, for the cases a webhook and controller meet, as client-go resolves them
(`rest.InClusterConfig`, `clientcmd`):

- **In a pod**: ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` name the API server and
  the ServiceAccount volume (``/var/run/secrets/kubernetes.io/serviceaccount``) holds the token, the
  cluster CA and the namespace. The kubelet rotates the token file; it is re-read once a minute, as
  client-go does, and at once when the API server answers 401 (kopf logs in again then).
- **Else a kubeconfig**: ``$KUBECONFIG`` (a list of files: for each entry the first file that names
  it wins, missing files are skipped) or ``~/.kube/config``, its current context: the cluster's
  ``server``, ``certificate-authority`` or ``certificate-authority-data``,
  ``insecure-skip-tls-verify``; the user's ``client-certificate``/``client-key`` (file or data),
  ``token`` or ``tokenFile`` (re-read like the ServiceAccount's). Relative paths are relative to the
  file that names them.

Credential plugins (``exec``, ``auth-provider``) and basic auth are refused with a message saying so:
flinkmem runs no plugin. Give it a ServiceAccount token or a client certificate instead.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import yaml

__all__ = ["SERVICE_ACCOUNT_DIR", "Credentials", "CredentialsError", "load_credentials"]

logger = logging.getLogger("flinkmem.credentials")

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# client-go's cached token file source re-reads the file after a minute.
TOKEN_REREAD_SECONDS = 60.0


class CredentialsError(RuntimeError):
    """No usable credentials: neither in a pod nor a kubeconfig flinkmem can use."""


class _TokenFile:
    """A bearer token kept in a file that someone else rotates (the kubelet, a sidecar)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._token: str | None = None
        self._read_at = 0.0

    def token(self, fresh: bool = False) -> str:
        now = time.monotonic()
        if self._token is not None and not fresh and now - self._read_at < TOKEN_REREAD_SECONDS:
            return self._token
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            if self._token is None:
                raise CredentialsError(f"cannot read the token file {self.path}: {exc}") from None
            logger.warning("cannot re-read the token file %s, keeping the last token: %s", self.path, exc)
            return self._token
        self._token, self._read_at = text, now
        return text


@dataclass(frozen=True)
class Credentials:
    """An API server and how to authenticate to it."""

    server: str
    source: str = "given"
    ca_file: Path | None = None
    ca_data: bytes | None = None  # PEM
    insecure: bool = False
    cert_file: Path | None = None
    cert_data: bytes | None = None  # PEM
    key_file: Path | None = None
    key_data: bytes | None = None  # PEM
    token: str | None = None
    token_file: Path | None = None
    namespace: str | None = None
    _token_file: _TokenFile | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.token_file is not None:
            object.__setattr__(self, "_token_file", _TokenFile(self.token_file))

    def bearer_token(self, fresh: bool = False) -> str | None:
        """The token to send: the fixed one, or the token file's (re-read after a minute, or when `fresh`)."""
        if self._token_file is not None:
            return self._token_file.token(fresh)
        return self.token

    def authorization(self) -> dict[str, str]:
        token = self.bearer_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def connection_info(self, fresh: bool = False) -> kopf.ConnectionInfo:
        """The same credentials as kopf takes them from a login handler."""
        return kopf.ConnectionInfo(
            server=self.server,
            ca_path=str(self.ca_file) if self.ca_file else None,
            ca_data=self.ca_data,
            insecure=self.insecure or None,
            certificate_path=str(self.cert_file) if self.cert_file else None,
            certificate_data=self.cert_data,
            private_key_path=str(self.key_file) if self.key_file else None,
            private_key_data=self.key_data,
            token=self.bearer_token(fresh),
            default_namespace=self.namespace,
        )


def load_credentials(environ: Mapping[str, str] | None = None, service_account: Path | None = None) -> Credentials:
    """In-cluster credentials when running in a pod, else the kubeconfig's current context."""
    env = os.environ if environ is None else environ
    account = SERVICE_ACCOUNT_DIR if service_account is None else service_account
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if host and port and (account / "token").exists():
        return _in_cluster(host, port, account)
    return _from_kubeconfig(env)


def _in_cluster(host: str, port: str, account: Path) -> Credentials:
    server_host = f"[{host}]" if ":" in host else host
    namespace_file = account / "namespace"
    ca = account / "ca.crt"
    return Credentials(
        server=f"https://{server_host}:{port}",
        source=f"in-cluster ServiceAccount ({account})",
        ca_file=ca if ca.exists() else None,
        token_file=account / "token",
        namespace=namespace_file.read_text(encoding="utf-8").strip() if namespace_file.exists() else None,
    )


def _kubeconfig_paths(env: Mapping[str, str]) -> list[Path]:
    listed = env.get("KUBECONFIG", "")
    if listed:
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    return [Path(env.get("HOME", str(Path.home()))) / ".kube" / "config"]


def _from_kubeconfig(env: Mapping[str, str]) -> Credentials:
    paths = _kubeconfig_paths(env)
    current: str | None = None
    found: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {"contexts": {}, "clusters": {}, "users": {}}
    read: list[Path] = []
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as exc:
            raise CredentialsError(f"cannot read the kubeconfig {path}: {exc}") from None
        if not isinstance(doc, dict):
            raise CredentialsError(f"the kubeconfig {path} is not a mapping")
        read.append(path)
        current = current or doc.get("current-context") or None
        for section, inner in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
            for item in doc.get(section) or []:
                if isinstance(item, dict) and "name" in item:
                    found[section].setdefault(str(item["name"]), (path.parent, dict(item.get(inner) or {})))
    if not read:
        where = ", ".join(str(p) for p in paths)
        raise CredentialsError(
            f"not in a pod (no KUBERNETES_SERVICE_HOST/PORT with a ServiceAccount token) and no kubeconfig at {where}"
        )
    if current is None:
        raise CredentialsError(f"the kubeconfig ({', '.join(map(str, read))}) sets no current-context")
    if current not in found["contexts"]:
        raise CredentialsError(f"the kubeconfig's current-context {current!r} is not defined")
    _, context = found["contexts"][current]
    cluster_name, user_name = str(context.get("cluster", "")), str(context.get("user", ""))
    if cluster_name not in found["clusters"]:
        raise CredentialsError(f"context {current!r}: cluster {cluster_name!r} is not defined")
    base, cluster = found["clusters"][cluster_name]
    user_base, user = found["users"].get(user_name, (base, {}))
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            raise CredentialsError(
                f"context {current!r}: user {user_name!r} authenticates with an {plugin} plugin, which flinkmem "
                "does not run; give it a token, a tokenFile or a client certificate (e.g. a ServiceAccount's token)"
            )
    if user.get("username") or user.get("password"):
        raise CredentialsError(
            f"context {current!r}: user {user_name!r} uses basic auth, which Kubernetes removed (1.19); "
            "give it a token or a client certificate"
        )
    server = str(cluster.get("server") or "")
    if not server:
        raise CredentialsError(f"context {current!r}: cluster {cluster_name!r} has no server")

    def path_of(value: Any, relative_to: Path) -> Path | None:
        return (relative_to / Path(str(value)).expanduser()) if value else None

    def data_of(value: Any, what: str) -> bytes | None:
        if not value:
            return None
        try:
            return base64.b64decode(str(value), validate=True)
        except ValueError:
            raise CredentialsError(f"context {current!r}: {what} is not base64") from None

    # As clientcmd: embedded data wins over a file named next to it.
    ca_data = data_of(cluster.get("certificate-authority-data"), "certificate-authority-data")
    cert_data = data_of(user.get("client-certificate-data"), "client-certificate-data")
    key_data = data_of(user.get("client-key-data"), "client-key-data")
    return Credentials(
        server=server.rstrip("/"),
        source=f"kubeconfig {', '.join(map(str, read))}, context {current}",
        ca_file=None if ca_data else path_of(cluster.get("certificate-authority"), base),
        ca_data=ca_data,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=None if cert_data else path_of(user.get("client-certificate"), user_base),
        cert_data=cert_data,
        key_file=None if key_data else path_of(user.get("client-key"), user_base),
        key_data=key_data,
        token=str(user["token"]) if user.get("token") else None,
        token_file=path_of(user.get("tokenFile"), user_base) if not user.get("token") else None,
        namespace=str(context["namespace"]) if context.get("namespace") else None,
    )
