"""What both processes set up in kopf: its settings, the login and the watch selectors.

kopf runs the operator in each process (the webhook server's lifecycle, login, peering, the watches);
the admission transport and the controller register their own handlers (`admission.kopfpath`,
`controller`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import kopf

from flinkmem.conventions import (
    ANNOTATION_PREFIX,
    COMPONENT_LABEL,
    CONFIGMAP_PREFIX,
    FLINK_POD_TYPES,
    KOPF_DIFFBASE_KEY,
    KOPF_FINALIZER,
    SIZED_LABEL,
    TYPE_LABEL,
)
from flinkmem.runtime.credentials import Credentials
from flinkmem.sources.roles import ROLES

__all__ = [
    "CONFIGMAP_SELECTOR",
    "POD_SELECTOR",
    "base_settings",
    "is_flink_configmap",
    "register_login",
]

# Filtered in the API server, so that other pods and ConfigMaps never reach flinkmem's watches: every pod
# flinkmem sizes carries one of these components (Flink's own label, or next to the opt-in label), and
# Flink labels its ConfigMaps with its type.
# Pods flinkmem sized at admission carry SIZED_LABEL and are left out: the controller checks them only when
# their source changes (it then lists the cluster's pods), never one event at a time.
POD_SELECTOR = f"{COMPONENT_LABEL} in ({','.join(role.key for role in ROLES)}),!{SIZED_LABEL}"
CONFIGMAP_SELECTOR = f"{TYPE_LABEL} in ({','.join(FLINK_POD_TYPES)})"


class _RetryForever:
    """kopf's delays between attempts of a failed API request, without an end.

    kopf's default gives up after about a minute, and its operator exits when a start-up request
    or a watch cannot be made: an API server down for longer (an upgrade, an etcd restore) would
    make every replica crash-loop, and the kubelet's back-off would keep them down for minutes
    after it is back. Retrying every 10 s instead keeps the process up and /readyz false until the
    API server answers.
    """

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((1, 1, 2, 3, 5, 8), itertools.repeat(10))


def base_settings() -> kopf.OperatorSettings:
    """kopf's settings shared by the webhook and controller processes."""
    ks = kopf.OperatorSettings()
    # kopf's own bookkeeping stays in annotations under our prefix; `status` belongs to the Apache operator.
    ks.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    ks.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX, key=KOPF_DIFFBASE_KEY)
    ks.persistence.finalizer = KOPF_FINALIZER
    ks.posting.level = logging.WARNING
    ks.execution.max_workers = 8
    ks.networking.request_timeout = 30
    ks.networking.error_backoffs = _RetryForever()
    ks.watching.label_selectors["v1", "pods"] = POD_SELECTOR
    ks.watching.label_selectors["v1", "configmaps"] = CONFIGMAP_SELECTOR
    return ks


def is_flink_configmap(name: str | None, **_: Any) -> bool:
    return str(name or "").startswith(CONFIGMAP_PREFIX)


def register_login(registry: kopf.OperatorRegistry, credentials: Credentials) -> None:
    """kopf logs in with flinkmem's own credentials (`runtime/credentials.py`), at start and after a 401.

    Not kopf's `login_with_service_account`: it names `https://kubernetes.default.svc`, which needs the
    cluster's DNS, where client-go uses KUBERNETES_SERVICE_HOST; nor its `login_with_kubeconfig`,
    which reads no `tokenFile`. Each login re-reads a token file: after a 401 the rotated token is used.
    """

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return credentials.connection_info(fresh=True)

    del login
