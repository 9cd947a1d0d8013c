"""Flink's own configuration file as a source: in the flink-config-<cluster-id> ConfigMap Flink's native
client writes, or on disk for `flinkmem check`; and how its Flink version is found."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flinkmem.engine import DeploymentMode, FlinkVersion
from flinkmem.engine.configfile import ConfigFileError
from flinkmem.sources.flinkconfig import (
    ConfigMapError,
    configmap_name,
    from_config_file,
    from_flink_configmap,
    read_configmap,
    version_from_image,
)
from flinkmem.sources.model import MainContainer


def configmap(data: dict[str, str] | None, name: str = "flink-config-demo") -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "jobs"}}
    if data is not None:
        body["data"] = data
    return body


def read(cm: dict[str, Any], image: object = None, annotations: dict[str, Any] | None = None) -> Any:
    return from_flink_configmap(
        read_configmap(cm),
        mode=DeploymentMode.NATIVE,
        pod_annotations=annotations or {},
        image=image,
        role_key="jobmanager",
        container=MainContainer(env={"A": "b"}),
    )


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("flink:1.20.3-scala_2.12-java17", FlinkVersion(1, 20)),
        ("flink:2.3.0-java17", FlinkVersion(2, 3)),
        ("docker.io/apache/flink:2.1", FlinkVersion(2, 1)),
        ("registry.local:5000/team/flink:1.19.1", FlinkVersion(1, 19)),
        ("flink:1.20@sha256:abc", FlinkVersion(1, 20)),
        ("flink:latest", None),
        ("flink", None),
        ("registry.local:5000/flink", None),  # a port is not a tag
        ("mycorp/job:3.4.1", None),  # 3.x is no Flink release line
        ("flink:1.9.0", FlinkVersion(1, 9)),  # Flink's, though flinkmem does not support it
        (None, None),
        (17, None),
    ],
)
def test_version_from_image_tag(image: object, version: FlinkVersion | None) -> None:
    assert version_from_image(image) == version


def test_config_yaml_is_read_as_standard_yaml() -> None:
    text = "jobmanager:\n  memory:\n    process.size: 2g\ntaskmanager.numberOfTaskSlots: 2\nparallelism.default: 2\n"
    source = read(configmap({"config.yaml": text}))
    assert source.kind == "ConfigMap" and source.label == "ConfigMap jobs/flink-config-demo"
    # Typed as YAML; only the options flinkmem reads are kept (parallelism.default is not one).
    assert source.config == {"jobmanager.memory.process.size": "2g", "taskmanager.numberOfTaskSlots": 2}
    assert source.containers["jobmanager"].env == {"A": "b"}


def test_flink_conf_yaml_is_read_as_flink_1_lines() -> None:
    source = read(configmap({"flink-conf.yaml": "jobmanager.heap.size: 1g\nnot a pair\n"}))
    assert source.config == {"jobmanager.heap.size": "1g"}
    assert source.version == FlinkVersion(1, 20)  # only 1.x writes flink-conf.yaml, so it is assumed
    assert [n.code for n in source.notices] == ["config-line-skipped", "flink-version-unknown"]
    assert "assuming 1.20" in source.notices[1].message


def test_version_precedence_annotation_image_option_default() -> None:
    data = {"config.yaml": "kubernetes.container.image.ref: flink:1.19.2\njobmanager.memory.process.size: 2g\n"}
    assert read(configmap(data)).version == FlinkVersion(1, 19)
    assert read(configmap(data), image="flink:1.20.3").version == FlinkVersion(1, 20)
    annotated = read(configmap(data), image="flink:1.20.3", annotations={"flinkmem.io/flink-version": "2.3"})
    assert annotated.version == FlinkVersion(2, 3)
    unknown = read(configmap({"config.yaml": "a: b\n"}), image="corp/flink:stable")
    assert unknown.version == FlinkVersion(2, 3)
    assert [n.code for n in unknown.notices] == ["flink-version-unknown"]


def test_a_given_version_wins() -> None:
    source = from_flink_configmap(
        read_configmap(configmap({"config.yaml": "a: b\n"})),
        mode=DeploymentMode.STANDALONE,
        pod_annotations={},
        image="flink:2.3.0",
        role_key="taskmanager",
        container=MainContainer(),
        version=FlinkVersion(1, 20),
    )
    assert source.version == FlinkVersion(1, 20) and source.mode is DeploymentMode.STANDALONE
    assert source.notices == ()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (None, "has no data"),
        ({"log4j-console.properties": "x"}, "neither config.yaml nor flink-conf.yaml"),
        ({"config.yaml": "a: [unclosed\n"}, "config.yaml: not valid YAML"),
        ({"config.yaml": "a:\n"}, "has no value"),
    ],
)
def test_unusable_configmaps_say_why(data: dict[str, str] | None, fragment: str) -> None:
    with pytest.raises(ConfigMapError, match=re.escape(fragment)):
        read(configmap(data))


def test_configmap_name() -> None:
    assert configmap_name("demo") == "flink-config-demo"


def test_config_file_with_dynamic_properties_on_top() -> None:
    source = from_config_file(
        "conf/config.yaml",
        "jobmanager.memory.process.size: 2g\n",
        version=None,
        mode=DeploymentMode.NATIVE,
        dynamic={"jobmanager.memory.process.size": "3g"},
    )
    assert source.kind == "file" and source.label == "file conf/config.yaml"
    assert source.config == {"jobmanager.memory.process.size": "3g"}
    assert source.version == FlinkVersion(2, 3)
    assert [n.code for n in source.notices] == ["flink-version-unknown"]
    legacy = from_config_file("flink-conf.yaml", "a: b\n", version=None, mode=DeploymentMode.NATIVE)
    assert legacy.version == FlinkVersion(1, 20)
    assert [n.code for n in legacy.notices] == ["flink-version-unknown"]


def test_flink_2_never_reads_flink_conf_yaml() -> None:
    with pytest.raises(ConfigFileError, match=r"2\.x reads only config\.yaml"):
        from_config_file("flink-conf.yaml", "a: b\n", version=FlinkVersion(2, 3), mode=DeploymentMode.NATIVE)
