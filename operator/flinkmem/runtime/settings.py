"""How `flinkmem serve` is configured: flags, each with an environment variable fallback."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from flinkmem.conventions import DEFAULT_CONTAINER
from flinkmem.decisions.policy import DEFAULT_EXCLUDED, Scope, ValidationMode

__all__ = [
    "DEFAULT_BLUEGREEN_RESOURCE",
    "DEFAULT_RESOURCE",
    "TLS_VERSIONS",
    "ResourceRef",
    "Settings",
    "add_arguments",
    "from_arguments",
]

TLS_VERSIONS = ("1.2", "1.3")


@dataclass(frozen=True)
class ResourceRef:
    group: str
    version: str
    plural: str

    @classmethod
    def parse(cls, text: str) -> ResourceRef:
        """`plural.version.group` (kubectl style) or `group/version/plural`."""
        if "/" in text:
            parts = text.split("/")
            if len(parts) == 3 and all(parts):
                return cls(parts[0], parts[1], parts[2])
        else:
            plural, _, rest = text.partition(".")
            version, _, group = rest.partition(".")
            if plural and version and group:
                return cls(group, version, plural)
        raise ValueError(f"resource {text!r} must look like flinkdeployments.v1beta1.flink.apache.org")

    def __str__(self) -> str:
        return f"{self.plural}.{self.version}.{self.group}"


DEFAULT_RESOURCE = ResourceRef("flink.apache.org", "v1beta1", "flinkdeployments")
# The Apache operator's blue/green deployments (1.14.0 and later); their CRD is the operator's, never flinkmem's.
DEFAULT_BLUEGREEN_RESOURCE = ResourceRef("flink.apache.org", "v1beta1", "flinkbluegreendeployments")
# What --bluegreen-resource takes to leave blue/green deployments alone.
NO_RESOURCE = ("", "none")


def _optional_resource(text: str) -> ResourceRef | None:
    return None if text.strip().lower() in NO_RESOURCE else ResourceRef.parse(text)


@dataclass(frozen=True)
class Settings:
    resource: ResourceRef = DEFAULT_RESOURCE
    # None: blue/green deployments are neither validated nor annotated (no webhook rule, no watch, no RBAC).
    bluegreen_resource: ResourceRef | None = DEFAULT_BLUEGREEN_RESOURCE
    namespaces: tuple[str, ...] = ()
    excluded_namespaces: tuple[str, ...] = DEFAULT_EXCLUDED
    validation_mode: ValidationMode = ValidationMode.ENFORCE
    pod_mutation: bool = True
    container_name: str = DEFAULT_CONTAINER
    evict_drifted: bool = False
    bind_address: str = "0.0.0.0"
    webhook_port: int = 9443
    health_port: int = 8080
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_min_version: str = "1.3"
    # Only callers with a client certificate signed by this CA (the API server) are answered; None: any.
    client_ca_file: Path | None = None
    client_names: tuple[str, ...] = ()  # accepted common names or DNS names of that certificate; (): any
    cert_reload_seconds: float = 10.0
    self_signed_dir: Path | None = None
    register_url: str | None = None
    install_crd: bool = False
    owner_lookup_timeout: float = 2.0
    max_request_bytes: int = 8 * 1024 * 1024
    extra_sans: tuple[str, ...] = field(default_factory=tuple)
    service_account: str | None = None
    controller_qps: float = 10.0
    controller_burst: int = 30
    admission_engine: str = "direct"  # or "kopf": every review through kopf's admission engine

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def scope(self) -> Scope:
        return Scope(self.namespaces, self.excluded_namespaces)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"environment variable {name}={value!r} must be true or false")


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Numeric environment values stay strings here: argparse converts a string default with the
    # option's type when the option is parsed, so a bad value is a usage error naming the flag,
    # and only for `serve`.
    env = os.environ.get
    parser.add_argument(
        "--resource",
        default=env("FLINKMEM_RESOURCE", str(DEFAULT_RESOURCE)),
        help="watched FlinkDeployment-like resource as plural.version.group [FLINKMEM_RESOURCE]",
    )
    parser.add_argument(
        "--bluegreen-resource",
        default=env("FLINKMEM_BLUEGREEN_RESOURCE", str(DEFAULT_BLUEGREEN_RESOURCE)),
        help="the Apache operator's FlinkBlueGreenDeployment resource as plural.version.group, whose "
        "spec.template.spec flinkmem validates and annotates as a FlinkDeployment; none to leave them alone "
        "[FLINKMEM_BLUEGREEN_RESOURCE]",
    )
    parser.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        default=None,
        help="namespace to watch; repeat for several; default all [FLINKMEM_NAMESPACES, comma-separated]",
    )
    parser.add_argument(
        "--exclude-namespace",
        dest="excluded_namespaces",
        action="append",
        default=None,
        help="namespace no part of flinkmem looks at (the webhooks' namespaceSelector must exclude it too); "
        f"repeat for several; default {','.join(DEFAULT_EXCLUDED)} [FLINKMEM_EXCLUDED_NAMESPACES, comma-separated]",
    )
    parser.add_argument(
        "--validation-mode",
        choices=[m.value for m in ValidationMode],
        default=env("FLINKMEM_VALIDATION_MODE", "enforce"),
        help="enforce refuses conflicts, warn admits with warnings, audit only records [FLINKMEM_VALIDATION_MODE]",
    )
    parser.add_argument(
        "--pod-mutation",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="size JobManager pods and set their JVM flags (default on) [FLINKMEM_POD_MUTATION]",
    )
    parser.add_argument(
        "--container-name",
        default=env("FLINKMEM_CONTAINER_NAME", DEFAULT_CONTAINER),
        help="JobManager container name [FLINKMEM_CONTAINER_NAME]",
    )
    parser.add_argument(
        "--evict-drifted",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="in enforce mode, evict JobManager pods whose memory drifted (default off) [FLINKMEM_EVICT_DRIFTED]",
    )
    parser.add_argument("--bind-address", default=env("FLINKMEM_BIND_ADDRESS", "0.0.0.0"))
    parser.add_argument("--webhook-port", type=int, default=env("FLINKMEM_WEBHOOK_PORT", "9443"))
    parser.add_argument(
        "--health-port",
        type=int,
        default=env("FLINKMEM_HEALTH_PORT", "8080"),
        help="plain HTTP port for /healthz, /readyz and /metrics [FLINKMEM_HEALTH_PORT]",
    )
    parser.add_argument("--tls-cert-file", default=env("FLINKMEM_TLS_CERT_FILE"), help="[FLINKMEM_TLS_CERT_FILE]")
    parser.add_argument("--tls-key-file", default=env("FLINKMEM_TLS_KEY_FILE"), help="[FLINKMEM_TLS_KEY_FILE]")
    parser.add_argument(
        "--tls-ca-file", default=env("FLINKMEM_TLS_CA_FILE"), help="CA of the serving cert [FLINKMEM_TLS_CA_FILE]"
    )
    parser.add_argument(
        "--tls-min-version",
        choices=list(TLS_VERSIONS),
        default=env("FLINKMEM_TLS_MIN_VERSION", "1.3"),
        help="the oldest TLS version the webhook port accepts [FLINKMEM_TLS_MIN_VERSION]",
    )
    parser.add_argument(
        "--client-ca-file",
        default=env("FLINKMEM_CLIENT_CA_FILE"),
        help="answer only callers with a client certificate from this CA: the API server's webhook client "
        "certificate (AdmissionConfiguration) [FLINKMEM_CLIENT_CA_FILE]",
    )
    parser.add_argument(
        "--client-name",
        dest="client_names",
        action="append",
        default=None,
        help="with --client-ca-file: a common name or DNS name the client certificate must carry; repeat for "
        "several [FLINKMEM_CLIENT_NAMES, comma-separated]",
    )
    parser.add_argument(
        "--self-signed-dir",
        default=env("FLINKMEM_SELF_SIGNED_DIR"),
        help="development: make a CA and serving certificate in this directory [FLINKMEM_SELF_SIGNED_DIR]",
    )
    parser.add_argument(
        "--register-url",
        default=env("FLINKMEM_REGISTER_URL"),
        help="development: register webhook configurations that call this base URL [FLINKMEM_REGISTER_URL]",
    )
    parser.add_argument(
        "--service-account",
        default=env("FLINKMEM_SERVICE_ACCOUNT"),
        help="flinkmem's own user name (system:serviceaccount:NS:NAME); its spec writes are refused "
        "[FLINKMEM_SERVICE_ACCOUNT]",
    )
    parser.add_argument(
        "--controller-qps",
        type=float,
        default=env("FLINKMEM_CONTROLLER_QPS", "10"),
        help="objects per second the controller may write about (annotation patch, Event, eviction), and "
        "Events per second the webhooks may post; 0 for no limit [FLINKMEM_CONTROLLER_QPS]",
    )
    parser.add_argument(
        "--controller-burst",
        type=int,
        default=env("FLINKMEM_CONTROLLER_BURST", "30"),
        help="how many of those may go at once before the rate applies [FLINKMEM_CONTROLLER_BURST]",
    )
    parser.add_argument(
        "--admission-engine",
        choices=["direct", "kopf"],
        default=env("FLINKMEM_ADMISSION_ENGINE", "direct"),
        help="direct answers the two webhooks from flinkmem's decisions; kopf sends every review through "
        "kopf's admission engine (several times the CPU per review) [FLINKMEM_ADMISSION_ENGINE]",
    )
    parser.add_argument(
        "--install-crd",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="development: install the bundled FlinkDeployment-like CRD if absent [FLINKMEM_INSTALL_CRD]",
    )


def from_arguments(args: argparse.Namespace) -> Settings:
    namespaces = args.namespaces if args.namespaces else _env_list("FLINKMEM_NAMESPACES")
    client_names = args.client_names if args.client_names else _env_list("FLINKMEM_CLIENT_NAMES")
    excluded = args.excluded_namespaces or _env_list("FLINKMEM_EXCLUDED_NAMESPACES") or list(DEFAULT_EXCLUDED)
    if set(excluded) & set(namespaces):
        raise ValueError(f"namespaces both watched and excluded: {', '.join(sorted(set(excluded) & set(namespaces)))}")
    if client_names and not args.client_ca_file:
        raise ValueError("--client-name needs --client-ca-file (the CA that signs the client certificate)")
    cert = args.tls_cert_file
    key = args.tls_key_file
    if bool(cert) != bool(key):
        raise ValueError("--tls-cert-file and --tls-key-file go together")
    if not cert and not args.self_signed_dir:
        raise ValueError("give --tls-cert-file/--tls-key-file, or --self-signed-dir for local development")
    if not (args.controller_qps >= 0 and math.isfinite(args.controller_qps)):
        raise ValueError(f"--controller-qps {args.controller_qps} must be 0 (no limit) or more")
    if args.controller_qps > 0 and args.controller_burst < 1:
        raise ValueError(f"--controller-burst {args.controller_burst} must be at least 1")
    bluegreen = _optional_resource(args.bluegreen_resource)
    if bluegreen is not None and bluegreen == ResourceRef.parse(args.resource):
        raise ValueError(f"--bluegreen-resource {bluegreen} is the FlinkDeployment resource; name another or none")
    for port in (args.webhook_port, args.health_port):
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range")
    return Settings(
        resource=ResourceRef.parse(args.resource),
        bluegreen_resource=bluegreen,
        namespaces=tuple(namespaces),
        excluded_namespaces=tuple(excluded),
        validation_mode=ValidationMode(args.validation_mode),
        pod_mutation=args.pod_mutation if args.pod_mutation is not None else _env_bool("FLINKMEM_POD_MUTATION", True),
        container_name=args.container_name,
        evict_drifted=(
            args.evict_drifted if args.evict_drifted is not None else _env_bool("FLINKMEM_EVICT_DRIFTED", False)
        ),
        bind_address=args.bind_address,
        webhook_port=args.webhook_port,
        health_port=args.health_port,
        tls_cert_file=Path(cert) if cert else None,
        tls_key_file=Path(key) if key else None,
        tls_ca_file=Path(args.tls_ca_file) if args.tls_ca_file else None,
        tls_min_version=args.tls_min_version,
        client_ca_file=Path(args.client_ca_file) if args.client_ca_file else None,
        client_names=tuple(client_names),
        self_signed_dir=Path(args.self_signed_dir) if args.self_signed_dir else None,
        register_url=args.register_url,
        controller_qps=args.controller_qps,
        controller_burst=args.controller_burst,
        install_crd=args.install_crd if args.install_crd is not None else _env_bool("FLINKMEM_INSTALL_CRD", False),
        service_account=args.service_account or None,
        admission_engine=args.admission_engine,
    )
