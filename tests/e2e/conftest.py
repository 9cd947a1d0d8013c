"""Fixtures for the e2e suite: one real Kubernetes cluster per test session, one namespace per test.

``cluster`` (session): a :class:`localplane.controlplane.Cluster`. Which cluster:

- ``$KUBECONFIG`` if set (and not ``.cluster/kubeconfig``), e.g. a kind cluster
  (``tests/e2e/kind-config.yaml``); never started or stopped;
- else the local control plane of ``make cluster-up`` (``.cluster/kubeconfig``), left running;
- else a local control plane started for this session and stopped when it ends.

It offers ``kubeconfig``, ``server``, ``ca_file``, ``kubectl(*args)`` (a ``CompletedProcess``),
``api_client()`` (a ``kubernetes.client.ApiClient``), ``with_token(token, name)`` (the same cluster
as a bearer-token identity, such as a ServiceAccount) and, on the local control plane only,
``user(name, groups)`` (a client-certificate identity) and ``pki_dir`` (its CA).

``namespace`` (function): the name of a fresh namespace whose ``default`` ServiceAccount exists;
deleted (without waiting) after the test.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest

from localplane.controlplane import Cluster, session_cluster, wait_until


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with session_cluster(tmp_path_factory.mktemp("cluster")) as handle:
        yield handle


def _namespace_name(test_name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")[:40].strip("-")
    return f"e2e-{stem}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _namespace_name(request.node.name)
    cluster.kubectl("create", "namespace", name)
    # Pods are refused until the ServiceAccount controller has made `default`.
    wait_until(
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        what=f"serviceaccount default in {name}",
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
