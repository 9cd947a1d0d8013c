"""The watch-fed cache of pod sources and its freshness rule."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flinkmem.sources.cache import SourceCache
from tests.unit.fixtures import flinkdeployment


class Reader:
    def __init__(self) -> None:
        self.reads: list[str] = []

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.reads.append(f"fd {namespace}/{name}")
        return {"metadata": {"name": name, "namespace": namespace}, "read": True}

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.reads.append(f"cm {namespace}/{name}")
        return None


def test_a_watched_flinkdeployment_answers_without_a_read() -> None:
    reader = Reader()
    cache = SourceCache(reader)
    deployment = flinkdeployment(memory="2g")
    deployment["status"] = {"observedGeneration": 3, "reconciliationStatus": {"lastReconciledSpec": "x" * 10_000}}
    deployment["metadata"]["generation"] = 3
    assert cache.remember_deployment(deployment) is None
    found = asyncio.run(cache.flinkdeployment("jobs", "demo"))
    assert found is not None and found["spec"] == deployment["spec"]
    assert "reconciliationStatus" not in found.get("status", {})  # the operator's copies of specs are dropped
    assert reader.reads == []


def test_a_spec_change_not_rolled_out_yet_is_read_again() -> None:
    reader = Reader()
    cache = SourceCache(reader)
    deployment = flinkdeployment(memory="2g")
    deployment["metadata"]["generation"] = 4
    deployment["status"] = {"observedGeneration": 3}
    cache.remember_deployment(deployment)
    found = asyncio.run(cache.flinkdeployment("jobs", "demo"))
    assert found is not None and found.get("read") is True
    assert reader.reads == ["fd jobs/demo"]


def test_misses_are_read_and_deletions_forgotten() -> None:
    reader = Reader()
    cache = SourceCache(reader)
    cache.remember_deployment(flinkdeployment(memory="2g"))
    cache.forget_deployment("jobs", "demo")
    asyncio.run(cache.flinkdeployment("jobs", "demo"))
    configmap = {"metadata": {"name": "flink-config-demo", "namespace": "jobs"}, "data": {"config.yaml": "a: b\n"}}
    cache.remember_configmap(configmap)
    assert asyncio.run(cache.configmap("jobs", "flink-config-demo")) == {
        "metadata": {"name": "flink-config-demo", "namespace": "jobs"},
        "data": {"config.yaml": "a: b\n"},
    }
    assert cache.cached_configmap("jobs", "demo") is not None
    cache.forget_configmap("jobs", "demo")
    assert asyncio.run(cache.configmap("jobs", "flink-config-demo")) is None
    assert reader.reads == ["fd jobs/demo", "cm jobs/flink-config-demo"]


def test_remembering_returns_the_previous_copy() -> None:
    cache = SourceCache(Reader())
    cache.remember_deployment(flinkdeployment(memory="2g"))
    previous = cache.remember_deployment(flinkdeployment(memory="4g"))
    assert previous is not None and previous["spec"]["jobManager"]["resource"]["memory"] == "2g"
