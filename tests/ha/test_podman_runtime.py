"""What the stand-in kubelet asks podman for, from the chart's own pod spec (no plane needed).

The HA suite runs the result (test_chart_installed.py reads it back from the running containers);
these check the translation itself, and the kubelet's refusals: a pod whose runAsNonRoot the user
cannot satisfy is never started (CreateContainerConfigError), and neither is one whose image is not
here (ErrImageNeverPull).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from localplane.kubelet import ContainerConfigError, PodmanRuntime, _PodRunner, parse_quantity
from tests.packaging.chart import find, render

IMAGE = "localhost/flinkmem-runtime-test:never-built"


@dataclass
class _Runner:
    """The parts of a pod runner the runtime reads."""

    pod: dict[str, Any]
    root: Path
    name_: str = "flinkmem-abc"
    namespace: str = "flinkmem"
    grace: float = 30.0
    env: dict[str, str] = field(default_factory=lambda: {"FLINKMEM_BIND_ADDRESS": "192.0.2.211"})

    @property
    def container(self) -> dict[str, Any]:
        container: dict[str, Any] = self.pod["spec"]["containers"][0]
        return container

    def _volume_dir(self, name: str) -> Path:
        return self.root / "volumes" / name

    def _container_env(self) -> dict[str, str]:
        return self.env


def _runtime(user: str) -> PodmanRuntime:
    runtime = PodmanRuntime.__new__(PodmanRuntime)  # no podman calls: the image is known already
    runtime.netns, runtime.owner, runtime.name = "/proc/1/fd/3", "1", "podman"
    runtime._images = {IMAGE: ("0123abcd", user)}
    return runtime


def _chart_pod(**security: Any) -> dict[str, Any]:
    deployment = find(render({}), "Deployment")
    pod: dict[str, Any] = {"metadata": {"name": "flinkmem-abc"}, "spec": deployment["spec"]["template"]["spec"]}
    pod["spec"]["containers"][0]["image"] = IMAGE
    pod["spec"]["containers"][0]["securityContext"].update(security)
    return pod


def _argv(pod: dict[str, Any], user: str, tmp_path: Path) -> list[str]:
    return _runtime(user).argv(cast(_PodRunner, _Runner(pod, tmp_path)), "c")


def _options(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_the_chart_pod_becomes_these_podman_flags(tmp_path: Path) -> None:
    argv = _argv(_chart_pod(), "65532:65532", tmp_path)
    assert _options(argv, "--user") == ["65532:65532"]
    assert _options(argv, "--group-add") == ["65532"], "fsGroup"
    assert "--read-only" in argv and "--read-only-tmpfs=false" in argv
    assert _options(argv, "--cap-drop") == ["ALL"] and _options(argv, "--cap-add") == []
    assert _options(argv, "--security-opt") == ["no-new-privileges"], "RuntimeDefault seccomp: podman's default"
    assert _options(argv, "--memory") == [f"{512 * 2**20}b"] == _options(argv, "--memory-swap")
    assert _options(argv, "--cpus") == ["1.000"] and _options(argv, "--cpu-shares") == ["102"]
    assert _options(argv, "--network") == ["ns:/proc/1/fd/3"]
    assert _options(argv, "--stop-timeout") == ["30"] and _options(argv, "--stop-signal") == ["SIGTERM"]
    mounts = dict(m.split(",destination=", 1)[1].partition(",")[::2] for m in _options(argv, "--mount"))
    assert mounts["/etc/flinkmem/tls"] == "ro=true" and mounts["/tmp"] == ""
    assert f"source={tmp_path}/volumes/tls" in " ".join(_options(argv, "--mount"))
    assert "FLINKMEM_BIND_ADDRESS=192.0.2.211" in _options(argv, "--env")
    assert argv[argv.index(IMAGE) :] == [IMAGE], "the image's entrypoint, no args with the default values"


def test_run_as_non_root_is_checked_before_the_start(tmp_path: Path) -> None:
    with pytest.raises(ContainerConfigError, match="image will run as root") as refused:
        _argv(_chart_pod(runAsUser=0), "65532:65532", tmp_path)
    assert refused.value.reason == "CreateContainerConfigError"
    # Without runAsUser the image's user counts: numeric and not 0 passes, a name cannot be verified.
    pod = _chart_pod()
    for context in (pod["spec"]["securityContext"], pod["spec"]["containers"][0]["securityContext"]):
        del context["runAsUser"], context["runAsGroup"]
    assert _options(_argv(pod, "1000:1000", tmp_path), "--user") == ["1000:1000"]
    with pytest.raises(ContainerConfigError, match="non-numeric user"):
        _argv(pod, "flink", tmp_path)
    with pytest.raises(ContainerConfigError, match="will run as root"):
        _argv(pod, "0", tmp_path)


def test_seccomp_unconfined_unless_asked_and_added_capabilities(tmp_path: Path) -> None:
    pod = _chart_pod(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, allowPrivilegeEscalation=True)
    del pod["spec"]["securityContext"]["seccompProfile"]
    del pod["spec"]["containers"][0]["securityContext"]["seccompProfile"]
    argv = _argv(pod, "65532:65532", tmp_path)
    assert _options(argv, "--cap-add") == ["NET_BIND_SERVICE"]
    assert _options(argv, "--security-opt") == ["seccomp=unconfined"], "the kubelet's default: Unconfined"


def test_a_missing_image_is_never_pulled(tmp_path: Path) -> None:
    assert shutil.which("podman"), "podman is missing: run `make image`"
    runtime = _runtime("65532:65532")
    runtime._images = {}
    pod = _chart_pod()
    with pytest.raises(ContainerConfigError) as refused:
        runtime.argv(cast(_PodRunner, _Runner(pod, tmp_path)), "c")
    assert refused.value.reason == "ErrImageNeverPull"


def test_quantities() -> None:
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity("100m") == pytest.approx(0.1)
    assert parse_quantity("1") == 1 and parse_quantity("1.5G") == 1.5e9 and parse_quantity(2) == 2
