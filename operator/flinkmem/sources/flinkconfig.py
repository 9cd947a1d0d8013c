"""From Flink's own configuration file to a `FlinkSource`: in Flink's ConfigMap, or on disk for the CLI.

`kubernetes-session.sh` and `flink run-application -t kubernetes-application` write the cluster's
effective configuration into the ConfigMap `flink-config-<cluster-id>`, mounted as the conf directory
of every JobManager and TaskManager pod: `config.yaml` (standard YAML, Flink 2.x and 1.19+) or the
1.x `flink-conf.yaml` (Flink's line format). The pod's main container adds its environment and the
`-D` options on its command line, which the start scripts apply after the file. The CLI reads the
same files from disk (`flinkmem check config.yaml`), so native-client users can check them in CI.

A ConfigMap does not say which Flink wrote it, so the version comes from, in this order: the pod's
annotation `flinkmem.io/flink-version` (set it with `kubernetes.jobmanager.annotations` and
`kubernetes.taskmanager.annotations`), the tag of the pod's image (`flink:1.20.3-java17`), Flink's
`kubernetes.container.image.ref` option, `flink-conf.yaml` (only 1.x writes it), else the newest
supported line, with a warning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flinkmem.conventions import CONFIGMAP_PREFIX, VERSION_ANNOTATION
from flinkmem.engine import DeploymentMode, FlinkVersion, Notice, RawValue, UnsupportedInput
from flinkmem.engine.configfile import ConfigFileError, parse_config_yaml, parse_legacy_flink_conf
from flinkmem.engine.options import java_text
from flinkmem.engine.versions import LATEST
from flinkmem.sources.model import FlinkSource, MainContainer, is_relevant

__all__ = [
    "LEGACY_FILE",
    "NEW_FILE",
    "ConfigMapError",
    "FlinkConfigMap",
    "configmap_name",
    "file_digest",
    "from_config_file",
    "from_flink_configmap",
    "read_configmap",
    "read_flink_config",
    "version_from_image",
]

NEW_FILE = "config.yaml"
LEGACY_FILE = "flink-conf.yaml"
_IMAGE_OPTIONS = ("kubernetes.container.image.ref", "kubernetes.container.image")
# An image tag that starts with a Flink release: flink:1.20.3-scala_2.12-java17, apache/flink:2.3.0.
_TAG_VERSION = re.compile(r"(?:^|[:@/])v?(\d+\.\d+)(?:\.\d+)?(?:[-_.][\w.-]*)?$")


class ConfigMapError(ValueError):
    """The ConfigMap holds no configuration flinkmem can read; the reason names the key."""


def configmap_name(cluster_id: str) -> str:
    return f"{CONFIGMAP_PREFIX}{cluster_id}"


def version_from_image(image: object) -> FlinkVersion | None:
    """The Flink release line an image tag names (`flink:1.20.3-java17` is 1.20), if any."""
    if not isinstance(image, str):
        return None
    tag = image.rsplit("@", 1)[0]
    name, _, tag = tag.rpartition(":")
    if not name or "/" in tag:
        return None
    match = _TAG_VERSION.search(":" + tag)
    if match is None:
        return None
    try:
        return FlinkVersion.parse(match.group(1))
    except UnsupportedInput:
        return None


def _version(
    annotations: Mapping[str, Any], image: object, config: Mapping[str, RawValue], legacy_file: bool
) -> tuple[FlinkVersion, Notice | None]:
    annotated = annotations.get(VERSION_ANNOTATION)
    if isinstance(annotated, str) and annotated:
        try:
            return FlinkVersion.parse(annotated), None
        except UnsupportedInput as exc:
            return LATEST, Notice("flink-version-unknown", f"{VERSION_ANNOTATION}: {exc}; assuming Flink {LATEST}")
    for candidate in (image, *(config.get(key) for key in _IMAGE_OPTIONS)):
        found = version_from_image(java_text(candidate) if isinstance(candidate, bool | int | float) else candidate)
        if found is not None:
            return found, None
    if legacy_file:
        return FlinkVersion(1, 20), None
    return LATEST, Notice(
        "flink-version-unknown",
        f"the Flink version is not in the image tag; assuming {LATEST} (annotate the pods with {VERSION_ANNOTATION})",
    )


def read_flink_config(text: str, legacy: bool, where: str) -> tuple[dict[str, RawValue], list[Notice]]:
    """The options of a `config.yaml` (or, `legacy`, a 1.x `flink-conf.yaml`), read as Flink reads them."""
    if legacy:
        config, skipped = parse_legacy_flink_conf(text)
        return config, [Notice("config-line-skipped", f"{where}: {s} (Flink skips it)") for s in skipped]
    return parse_config_yaml(text), []


def from_config_file(
    name: str,
    text: str,
    *,
    version: FlinkVersion | None,
    mode: DeploymentMode,
    dynamic: Mapping[str, str] | None = None,
) -> FlinkSource:
    """A configuration file on disk with `-D` options on top; ConfigFileError if Flink cannot load it.

    The version, unless given, is found as for a ConfigMap (the image options, a legacy file name).
    """
    legacy = name.rsplit("/", 1)[-1] == LEGACY_FILE
    if legacy and version is not None and version.major >= 2:
        raise ConfigFileError("Flink 2.x reads only config.yaml, never flink-conf.yaml; migrate the file first")
    config, notices = read_flink_config(text, legacy, name)
    config.update(dynamic or {})
    notice: Notice | None = None
    if version is None:
        version, notice = _version({}, None, config, legacy)
        if notice is not None:
            notice = Notice(
                notice.code, f"the file does not say its Flink version; assuming {version} (--flink-version)"
            )
    return FlinkSource(
        kind="file",
        name=name,
        namespace="",
        config=config,
        version=version,
        mode=mode,
        notices=tuple([*notices, *([notice] if notice else [])]),
    )


@dataclass(frozen=True)
class FlinkConfigMap:
    """Flink's ConfigMap, read once when it arrives: its options (trimmed to those resolution reads), which
    file held them, what Flink would say about the file, or why it cannot be read."""

    name: str
    namespace: str
    config: Mapping[str, RawValue] = field(default_factory=dict)
    legacy: bool = False  # the options came from a 1.x flink-conf.yaml
    notices: tuple[Notice, ...] = ()
    problem: str | None = None
    digest: str = ""  # of the file's text, so an update that leaves it alone is not read again


def file_digest(data: Mapping[str, Any]) -> str:
    """A digest of the file `read_configmap` reads from a ConfigMap's data ("" when there is none)."""
    file = NEW_FILE if data.get(NEW_FILE) is not None else LEGACY_FILE
    text = data.get(file)
    if not isinstance(text, str):
        return ""
    return hashlib.sha256(f"{file}\n{text}".encode(errors="surrogatepass")).hexdigest()


def read_configmap(configmap: Mapping[str, Any]) -> FlinkConfigMap:
    """A ConfigMap object as the sources need it; an unreadable one carries its problem, naming the key."""
    metadata = configmap.get("metadata") if isinstance(configmap.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    name, namespace = str(metadata.get("name") or ""), str(metadata.get("namespace") or "")
    data = configmap.get("data")
    if not isinstance(data, Mapping):
        return FlinkConfigMap(name, namespace, problem=f"ConfigMap {name} has no data")
    text = data.get(NEW_FILE)
    legacy = text is None
    if legacy:
        text = data.get(LEGACY_FILE)
    if not isinstance(text, str):
        return FlinkConfigMap(name, namespace, problem=f"ConfigMap {name} has neither {NEW_FILE} nor {LEGACY_FILE}")
    file = LEGACY_FILE if legacy else NEW_FILE
    digest = file_digest(data)
    try:
        config, notices = read_flink_config(text, legacy, f"{name}/{file}")
    except ConfigFileError as exc:
        return FlinkConfigMap(name, namespace, legacy=legacy, problem=f"ConfigMap {name}, {file}: {exc}", digest=digest)
    relevant = {key: value for key, value in config.items() if is_relevant(key)}
    return FlinkConfigMap(name, namespace, relevant, legacy, tuple(notices), None, digest)


def from_flink_configmap(
    configmap: FlinkConfigMap,
    *,
    mode: DeploymentMode,
    pod_annotations: Mapping[str, Any],
    image: object,
    role_key: str,
    container: MainContainer,
    version: FlinkVersion | None = None,
) -> FlinkSource:
    """The source of a pod that Flink's ConfigMap configures; the pod gives its annotations and image.

    `version`, when known otherwise (a FlinkDeployment of the same cluster says it), takes precedence.
    Raises ConfigMapError when the ConfigMap cannot be read.
    """
    if configmap.problem is not None:
        raise ConfigMapError(configmap.problem)
    notices = list(configmap.notices)
    notice: Notice | None = None
    if version is None:
        version, notice = _version(pod_annotations, image, configmap.config, configmap.legacy)
    if notice is not None:
        notices.append(notice)
    return FlinkSource(
        kind="ConfigMap",
        name=configmap.name,
        namespace=configmap.namespace,
        config=dict(configmap.config),
        version=version,
        mode=mode,
        containers={role_key: container},
        notices=tuple(notices),
    )
