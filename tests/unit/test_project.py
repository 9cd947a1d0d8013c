"""Facts about the project itself: one version, every make target documented."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import yaml

import flinkmem

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_written_once_and_everything_follows_it() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", flinkmem.__version__)
    assert importlib.metadata.version("flinkmem") == flinkmem.__version__  # pyproject reads it
    chart = yaml.safe_load((ROOT / "charts/flinkmem/Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == flinkmem.__version__
    assert 'version = "0.0.0"' in (ROOT / "native/Cargo.toml").read_text()  # the crate has none of its own
    assert "version =" not in (ROOT / "pyproject.toml").read_text().split("[project]")[1].split("[")[0]


def test_the_changelog_has_a_section_for_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{flinkmem.__version__}]" in text and "## [Unreleased]" in text


def test_make_help_lists_every_target() -> None:
    undocumented = []
    for makefile in [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]:
        for line in makefile.read_text().splitlines():
            match = re.match(r"^([a-zA-Z0-9_-]+):(?!=)", line)
            if match and "## " not in line:
                undocumented.append(f"{makefile.name}: {match.group(1)}")
    assert undocumented == []
