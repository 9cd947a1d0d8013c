"""flinkmem's own credential loader: a pod's ServiceAccount, else a kubeconfig's current context."""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path
from typing import Any

import aiohttp.web
import pytest
import yaml

from flinkmem.runtime import credentials as credentials_module
from flinkmem.runtime.certs import ensure_self_signed
from flinkmem.runtime.cluster import Cluster
from flinkmem.runtime.credentials import Credentials, CredentialsError, load_credentials
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.settings import Settings


def _account(tmp_path: Path, token: str = "sa-token") -> Path:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(token + "\n")
    (account / "ca.crt").write_text("CA")
    (account / "namespace").write_text("flinkmem\n")
    return account


def _kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any], **extra: Any) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "team"}}],
        "current-context": "ctx",
        **extra,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_in_a_pod_the_service_account_and_the_service_environment(tmp_path: Path) -> None:
    account = _account(tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBECONFIG": "/nonexistent"}
    found = load_credentials(env, account)
    assert found.server == "https://10.0.0.1:443"
    assert found.ca_file == account / "ca.crt"
    assert found.bearer_token() == "sa-token"
    assert found.namespace == "flinkmem"
    ipv6 = load_credentials({**env, "KUBERNETES_SERVICE_HOST": "fd00::1"}, account)
    assert ipv6.server == "https://[fd00::1]:443"


def test_outside_a_pod_the_kubeconfig_even_with_a_token_file_lying_around(tmp_path: Path) -> None:
    account = _account(tmp_path)
    config = _kubeconfig(tmp_path / "config", {"server": "https://api:6443/"}, {"token": "t"})
    found = load_credentials({"KUBECONFIG": str(config)}, account)
    assert found.server == "https://api:6443"
    assert found.authorization() == {"Authorization": "Bearer t"}
    assert found.namespace == "team"


def test_a_rotated_token_file_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = _account(tmp_path, "first")
    found = load_credentials({"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"}, account)
    assert found.bearer_token() == "first"
    (account / "token").write_text("second")
    assert found.bearer_token() == "first", "kept for a minute, as client-go does"
    assert found.bearer_token(fresh=True) == "second", "at once when asked (after a 401)"
    (account / "token").write_text("third")
    monkeypatch.setattr(credentials_module, "TOKEN_REREAD_SECONDS", 0.0)
    assert found.bearer_token() == "third"
    assert found.connection_info(fresh=True).token == "third"
    (account / "token").unlink()
    assert found.bearer_token() == "third", "a token file gone for a moment keeps the last token"


def test_kubeconfig_fields_files_relative_to_their_kubeconfig_and_data(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    cluster = {"server": "https://api", "certificate-authority": "ca.pem", "insecure-skip-tls-verify": False}
    user = {"client-certificate": "sub/client.pem", "client-key": "/abs/client.key", "tokenFile": "token"}
    found = load_credentials({"KUBECONFIG": str(_kubeconfig(tmp_path / "conf" / "config", cluster, user))})
    assert found.ca_file == tmp_path / "conf" / "ca.pem"
    assert found.cert_file == tmp_path / "conf" / "sub" / "client.pem"
    assert found.key_file == Path("/abs/client.key")
    assert found.token_file == tmp_path / "conf" / "token"
    embedded = {
        "client-certificate-data": base64.b64encode(b"CERT").decode(),
        "client-key-data": base64.b64encode(b"KEY").decode(),
    }
    cluster = {"server": "https://api", "certificate-authority-data": base64.b64encode(b"CA").decode()}
    cluster["certificate-authority"] = "ignored.pem"  # as clientcmd: the data wins
    found = load_credentials({"KUBECONFIG": str(_kubeconfig(tmp_path / "data", cluster, embedded))})
    assert (found.ca_data, found.cert_data, found.key_data) == (b"CA", b"CERT", b"KEY")
    assert found.ca_file is None and found.token is None and found.token_file is None
    insecure = _kubeconfig(tmp_path / "insecure", {"server": "https://api", "insecure-skip-tls-verify": True}, {})
    assert load_credentials({"KUBECONFIG": str(insecure)}).connection_info().insecure is True


def test_several_kubeconfigs_merge_first_one_wins_and_missing_ones_are_skipped(tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.write_text(yaml.safe_dump({"current-context": "b", "users": [{"name": "u", "user": {"token": "mine"}}]}))
    second = tmp_path / "second"
    second.write_text(
        yaml.safe_dump(
            {
                "current-context": "a",
                "clusters": [{"name": "c", "cluster": {"server": "https://second"}}],
                "users": [{"name": "u", "user": {"token": "theirs"}}],
                "contexts": [{"name": "b", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    env = {"KUBECONFIG": f"{tmp_path / 'missing'}:{first}:{second}"}
    found = load_credentials(env)
    assert (found.server, found.bearer_token()) == ("https://second", "mine")


@pytest.mark.parametrize(
    ("user", "says"),
    [
        ({"exec": {"command": "aws"}}, "exec plugin"),
        ({"auth-provider": {"name": "gcp"}}, "auth-provider plugin"),
        ({"username": "admin", "password": "x"}, "basic auth"),
    ],
)
def test_credential_plugins_are_refused_with_a_reason(tmp_path: Path, user: dict[str, Any], says: str) -> None:
    config = _kubeconfig(tmp_path / "config", {"server": "https://api"}, user)
    with pytest.raises(CredentialsError, match=says):
        load_credentials({"KUBECONFIG": str(config)})


def test_nothing_to_load_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="no kubeconfig at"):
        load_credentials({"HOME": str(tmp_path)}, tmp_path / "no-account")
    no_context = tmp_path / "config"
    no_context.write_text(yaml.safe_dump({"clusters": []}))
    with pytest.raises(CredentialsError, match="current-context"):
        load_credentials({"KUBECONFIG": str(no_context)})


def test_calls_carry_the_token_the_ca_is_trusted_and_a_401_reads_the_token_again(tmp_path: Path) -> None:
    """Against a stand-in API server over TLS: the server's CA from the credentials, the bearer token
    on every call, and a rotated token used after the old one is refused."""
    paths = ensure_self_signed(tmp_path / "tls", ["127.0.0.1"])
    token = tmp_path / "token"
    token.write_text("old")
    seen: list[str] = []

    async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer new":
            return aiohttp.web.json_response({"kind": "Status", "code": 401}, status=401)
        return aiohttp.web.json_response({"kind": "ConfigMap", "metadata": {"name": "x"}})

    async def scenario() -> Any:
        app = aiohttp.web.Application()
        app.add_routes([aiohttp.web.get("/api/v1/namespaces/ns/configmaps/x", handler)])
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(paths.cert, paths.key)
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = runner.addresses[0][1]
        api = Credentials(f"https://127.0.0.1:{port}", ca_file=paths.ca, token_file=token)
        cluster = Cluster(Settings(self_signed_dir=None), Metrics(), api)
        try:
            assert api.bearer_token() == "old"
            token.write_text("new")  # rotated; the cached "old" is refused once
            return await cluster.get_configmap("ns", "x")
        finally:
            await cluster.close()
            await runner.cleanup()

    assert asyncio.run(scenario()) == {"kind": "ConfigMap", "metadata": {"name": "x"}}
    assert seen[:2] == ["Bearer old", "Bearer new"]
