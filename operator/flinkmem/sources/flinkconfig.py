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
`kubernetes.container.image.ref` option, `flink-conf.yaml` (only 1.x writes it: 1.20 is assumed),
else the newest verified line; an assumed version comes with a warning.

Which file a process reads depends on its line (`engine.lines.FlinkLine.config_files`): up to 1.18
only `flink-conf.yaml`, 1.19 and 1.20 `flink-conf.yaml` if there is one and else `config.yaml`, from
2.0 only `config.yaml`. A ConfigMap keeps every file it has, read once, and a source takes the one
its line reads.
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
from flinkmem.engine.lines import CONFIG_YAML, FLINK_CONF_YAML, Support, line_of, support_of
from flinkmem.engine.options import java_text
from flinkmem.engine.versions import LATEST
from flinkmem.sources.model import FlinkSource, MainContainer, is_relevant

__all__ = [
    "LEGACY_FILE",
    "NEW_FILE",
    "ConfigFile",
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

NEW_FILE = CONFIG_YAML
LEGACY_FILE = FLINK_CONF_YAML
# Assumed for a flink-conf.yaml that does not say its version.
_NEWEST_1X = FlinkVersion(1, 20)
_IMAGE_OPTIONS = ("kubernetes.container.image.ref", "kubernetes.container.image")
# An image tag that starts with a Flink release: flink:1.20.3-scala_2.12-java17, apache/flink:2.3.0.
_TAG_VERSION = re.compile(r"(?:^|[:@/])v?(\d+\.\d+)(?:\.\d+)?(?:[-_.][\w.-]*)?$")


class ConfigMapError(ValueError):
    """The ConfigMap holds no configuration flinkmem can read; the reason names the key."""


def configmap_name(cluster_id: str) -> str:
    return f"{CONFIGMAP_PREFIX}{cluster_id}"


def version_from_image(image: object) -> FlinkVersion | None:
    """The Flink release line an image tag names (`flink:1.20.3-java17` is 1.20), if any; a 1.x or 2.x
    tag is taken as Flink's, supported or not."""
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
        version = FlinkVersion.parse(match.group(1))
    except UnsupportedInput:
        return None
    # Only Flink's own majors: `mycorp/job:3.4.1` names the job's release, not Flink's.
    return version if version.major in (1, 2) else None


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
        return _NEWEST_1X, Notice(
            "flink-version-unknown",
            f"the Flink version is not in the image tag; only Flink 1.x writes {LEGACY_FILE}, so assuming "
            f"{_NEWEST_1X} (annotate the pods with {VERSION_ANNOTATION})",
        )
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


def _file_refused(name: str, version: FlinkVersion) -> str | None:
    """Why Flink `version` never reads a file called `name` (None when it may)."""
    if name not in (NEW_FILE, LEGACY_FILE) or support_of(version) is Support.UNSUPPORTED:
        return None
    line = line_of(version)
    if name in line.config_files:
        return None
    if name == LEGACY_FILE:
        return f"Flink {line.major}.x reads only {NEW_FILE}, never {LEGACY_FILE}; migrate the file first"
    return f"Flink {version} reads only {LEGACY_FILE}, never {NEW_FILE} (which came with Flink 1.19)"


def from_config_file(
    name: str,
    text: str,
    *,
    version: FlinkVersion | None,
    mode: DeploymentMode,
    dynamic: Mapping[str, str] | None = None,
) -> FlinkSource:
    """A configuration file on disk with `-D` options on top; ConfigFileError if Flink cannot load it.

    A file named `flink-conf.yaml` is read in Flink 1.x's line format, `config.yaml` as standard YAML,
    any other name as its line reads its file (up to 1.18 the line format). The version, unless given,
    is found as for a ConfigMap (the image options, a legacy file name).
    """
    base = name.rsplit("/", 1)[-1]
    if version is not None and (refused := _file_refused(base, version)):
        raise ConfigFileError(refused)
    if base in (NEW_FILE, LEGACY_FILE):
        legacy = base == LEGACY_FILE
    else:
        legacy = version is not None and support_of(version) is not Support.UNSUPPORTED
        legacy = legacy and version is not None and line_of(version).config_files == (LEGACY_FILE,)
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
        config_file=LEGACY_FILE if legacy else NEW_FILE,
    )


@dataclass(frozen=True)
class ConfigFile:
    """One Flink configuration file of a ConfigMap, read once: its options (trimmed to those resolution
    reads), what Flink would say about it, or why it cannot be read."""

    name: str  # config.yaml or flink-conf.yaml
    config: Mapping[str, RawValue] = field(default_factory=dict)
    notices: tuple[Notice, ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class FlinkConfigMap:
    """Flink's ConfigMap, read once when it arrives: each Flink configuration file it has, or why it has
    none flinkmem can read."""

    name: str
    namespace: str
    files: tuple[ConfigFile, ...] = ()  # config.yaml first
    problem: str | None = None
    digest: str = ""  # of the files' texts, so an update that leaves them alone is not read again

    @property
    def default_file(self) -> ConfigFile | None:
        """The file read when the line is not known yet: config.yaml if there is one."""
        return self.files[0] if self.files else None

    @property
    def legacy(self) -> bool:
        """The ConfigMap has only a 1.x flink-conf.yaml."""
        return bool(self.files) and all(file.name == LEGACY_FILE for file in self.files)

    def file(self, name: str) -> ConfigFile | None:
        return next((file for file in self.files if file.name == name), None)

    def file_for(self, version: FlinkVersion) -> ConfigFile:
        """The file a process of `version` reads; ConfigMapError when it cannot be read."""
        if self.problem is not None:
            raise ConfigMapError(self.problem)
        if support_of(version) is Support.UNSUPPORTED:
            chosen = self.default_file
        else:
            names = line_of(version).config_files
            chosen = next((file for name in names if (file := self.file(name)) is not None), None)
            if chosen is None:
                raise ConfigMapError(f"ConfigMap {self.name} has no {' or '.join(names)}, which Flink {version} reads")
        assert chosen is not None  # a ConfigMap without a problem has a file
        if chosen.problem is not None:
            raise ConfigMapError(chosen.problem)
        return chosen


def file_digest(data: Mapping[str, Any]) -> str:
    """A digest of the files `read_configmap` reads from a ConfigMap's data ("" when there are none)."""
    texts = [(name, data.get(name)) for name in (NEW_FILE, LEGACY_FILE)]
    present = [f"{name}\n{text}" for name, text in texts if isinstance(text, str)]
    if not present:
        return ""
    return hashlib.sha256("\0".join(present).encode(errors="surrogatepass")).hexdigest()


def _read_file(configmap_name: str, name: str, text: str) -> ConfigFile:
    try:
        config, notices = read_flink_config(text, name == LEGACY_FILE, f"{configmap_name}/{name}")
    except ConfigFileError as exc:
        return ConfigFile(name, problem=f"ConfigMap {configmap_name}, {name}: {exc}")
    relevant = {key: value for key, value in config.items() if is_relevant(key)}
    return ConfigFile(name, relevant, tuple(notices))


def read_configmap(configmap: Mapping[str, Any]) -> FlinkConfigMap:
    """A ConfigMap object as the sources need it; an unreadable one carries its problem, naming the key."""
    metadata = configmap.get("metadata") if isinstance(configmap.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    name, namespace = str(metadata.get("name") or ""), str(metadata.get("namespace") or "")
    data = configmap.get("data")
    if not isinstance(data, Mapping):
        return FlinkConfigMap(name, namespace, problem=f"ConfigMap {name} has no data")
    files = tuple(
        _read_file(name, file, text) for file in (NEW_FILE, LEGACY_FILE) if isinstance(text := data.get(file), str)
    )
    if not files:
        return FlinkConfigMap(name, namespace, problem=f"ConfigMap {name} has neither {NEW_FILE} nor {LEGACY_FILE}")
    return FlinkConfigMap(name, namespace, files, None, file_digest(data))


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
    Raises ConfigMapError when the ConfigMap holds no file the version reads that can be read.
    """
    if configmap.problem is not None:
        raise ConfigMapError(configmap.problem)
    notice: Notice | None = None
    if version is None:
        default = configmap.default_file
        assert default is not None  # a ConfigMap without a problem has a file
        version, notice = _version(pod_annotations, image, default.config, configmap.legacy)
    file = configmap.file_for(version)
    notices = list(file.notices)
    if notice is not None:
        notices.append(notice)
    return FlinkSource(
        kind="ConfigMap",
        name=configmap.name,
        namespace=configmap.namespace,
        config=dict(file.config),
        version=version,
        mode=mode,
        containers={role_key: container},
        notices=tuple(notices),
        config_file=file.name,
    )
