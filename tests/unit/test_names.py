from __future__ import annotations

import pytest

from flinkmem.sources.names import is_dns1123_label, is_dns1123_subdomain


@pytest.mark.parametrize("name", ["jobs", "a", "team-a", "a" * 63, "0abc"])
def test_valid_labels(name: str) -> None:
    assert is_dns1123_label(name)


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "a" * 64, "a/b", "a?b", "..", "a.b", "ä", None, 3])
def test_invalid_labels(name: object) -> None:
    assert not is_dns1123_label(name)


@pytest.mark.parametrize("name", ["flink-config-demo", "a.b.c", "a" * 253, "x-1.y-2"])
def test_valid_subdomains(name: str) -> None:
    assert is_dns1123_subdomain(name)


@pytest.mark.parametrize("name", ["", "a..b", ".a", "a.", "a/b", "../x", "a?b=c", "A.b", "a" * 254, "-a.b"])
def test_invalid_subdomains(name: str) -> None:
    assert not is_dns1123_subdomain(name)
