"""The watch-fed cache of pod sources: its freshness rule, and memory bounded by what flinkmem reads."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from flinkmem.decisions.validation import validate_source
from flinkmem.sources.cache import MAX_SOURCE_BYTES, SourceCache
from flinkmem.sources.flinkdeployment import from_flinkdeployment
from tests.unit.fixtures import container_template, flinkdeployment


class Reader:
    def __init__(self, deployment: Mapping[str, Any] | None = None) -> None:
        self.reads: list[str] = []
        self.deployment = deployment

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.reads.append(f"fd {namespace}/{name}")
        return self.deployment

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.reads.append(f"cm {namespace}/{name}")
        return None


def _configmap(text: str) -> dict[str, Any]:
    return {"metadata": {"name": "flink-config-demo", "namespace": "jobs"}, "data": {"config.yaml": text}}


def test_a_watched_flinkdeployment_answers_without_a_read_and_keeps_only_its_source() -> None:
    reader = Reader()
    cache = SourceCache(reader)
    deployment = flinkdeployment({"jobmanager.memory.jvm-metaspace.size": "300m", "pipeline.name": "x" * 10_000})
    deployment["status"] = {"observedGeneration": 3, "reconciliationStatus": {"lastReconciledSpec": "x" * 10_000}}
    deployment["metadata"].update({"generation": 3, "uid": "u-1", "annotations": {"big": "x" * 10_000}})
    assert cache.remember_deployment(deployment)[0] is None
    found = asyncio.run(cache.flinkdeployment("jobs", "demo"))
    assert found is not None and found.source is not None and reader.reads == []
    assert found.ref == {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "demo", "namespace": "jobs", "uid": "u-1"},
    }
    assert "pipeline.name" not in found.source.config  # not a memory option: not kept
    assert found.source.config["jobmanager.memory.jvm-metaspace.size"] == "300m"


def test_a_spec_change_not_rolled_out_yet_is_read_again() -> None:
    newer = flinkdeployment(memory="4g")
    reader = Reader(newer)
    cache = SourceCache(reader)
    deployment = flinkdeployment(memory="2g")
    deployment["metadata"]["generation"] = 4
    deployment["status"] = {"observedGeneration": 3}
    cache.remember_deployment(deployment)
    found = asyncio.run(cache.flinkdeployment("jobs", "demo"))
    assert found is not None and found.source is not None
    assert found.source.config["jobmanager.memory.process.size"] == f"{4 << 30}b"
    assert reader.reads == ["fd jobs/demo"]


def test_misses_are_read_and_deletions_forgotten() -> None:
    reader = Reader()
    cache = SourceCache(reader)
    cache.remember_deployment(flinkdeployment(memory="2g"))
    cache.forget_deployment("jobs", "demo")
    assert asyncio.run(cache.flinkdeployment("jobs", "demo")) is None
    assert cache.remember_configmap(_configmap("jobmanager.memory.process.size: 2g\nweb.port: 1\n"))
    found = asyncio.run(cache.configmap("jobs", "flink-config-demo"))
    assert found is not None and found.default_file is not None
    assert dict(found.default_file.config) == {"jobmanager.memory.process.size": "2g"}
    cache.forget_configmap("jobs", "demo")
    assert asyncio.run(cache.configmap("jobs", "flink-config-demo")) is None
    assert reader.reads == ["fd jobs/demo", "cm jobs/flink-config-demo"]


def test_remembering_says_what_it_replaced_and_whether_the_memory_inputs_moved() -> None:
    cache = SourceCache(Reader())
    first, kept = cache.remember_deployment(flinkdeployment(memory="2g"))
    assert first is None
    relabelled = flinkdeployment(memory="2g")
    relabelled["metadata"]["labels"] = {"team": "a"}
    previous, current = cache.remember_deployment(relabelled)
    assert previous == kept and previous.inputs == current.inputs
    previous, current = cache.remember_deployment(flinkdeployment(memory="4g"))
    assert previous is not None and previous.inputs != current.inputs


def test_a_configmap_whose_file_did_not_change_is_not_read_again() -> None:
    cache = SourceCache(Reader())
    assert cache.remember_configmap(_configmap("jobmanager.memory.process.size: 2g\n"))
    relabelled = _configmap("jobmanager.memory.process.size: 2g\n")
    relabelled["metadata"]["labels"] = {"x": "y"}
    assert not cache.remember_configmap(relabelled)
    assert cache.remember_configmap(_configmap("jobmanager.memory.process.size: 4g\n"))
    # A config.yaml appearing next to an unchanged flink-conf.yaml takes over: read again.
    legacy = {"metadata": {"name": "flink-config-x", "namespace": "jobs"}, "data": {"flink-conf.yaml": "a: b\n"}}
    assert cache.remember_configmap(legacy)
    both = copy.deepcopy(legacy)
    both["data"]["config.yaml"] = "a: b\n"
    assert cache.remember_configmap(both)


def test_an_unreadable_or_oversized_source_is_kept_as_its_reason() -> None:
    cache = SourceCache(Reader())
    opts = "-D" + "x" * (MAX_SOURCE_BYTES + 1)
    cache.remember_deployment(flinkdeployment({"env.java.opts.jobmanager": opts}))
    known = cache.cached_deployment("jobs", "demo")
    assert known is not None and known.source is None and "more than 64 KiB" in (known.problem or "")
    broken = flinkdeployment(version="banana")
    cache.remember_deployment(broken)
    known = cache.cached_deployment("jobs", "demo")
    assert known is not None and known.source is None and "spec.flinkVersion" in (known.problem or "")
    cache.remember_configmap({"metadata": {"name": "flink-config-demo", "namespace": "jobs"}, "data": {}})
    cm = cache.cached_configmap("jobs", "demo")
    assert cm is not None and cm.problem is not None


def test_a_trimmed_source_resolves_exactly_as_the_whole_one() -> None:
    config = {
        "taskmanager.memory.process.size": "4g",
        "taskmanager.memory.managed.fraction": "0.3",
        "taskmanager.numberOfTaskSlots": "3",
        "external-resources": "gpu",
        "external-resource.gpu.amount": "2",
        "state.backend.type": "rocksdb",
        "env.java.opts.jobmanager": "-Xmx3g",
        "kubernetes.jobmanager.memory.limit-factor": "1.5",
        "kubernetes.taskmanager.cpu.amount": "2.5",
        "jobmanager.memory.jvm-overhead.fraction": "0.2",
        "high-availability.type": "kubernetes",
        "pipeline.name": "noise",
    }
    template = container_template(limit="3Gi", env={"FLINK_ENV_JAVA_OPTS": "-Xms1g", "OTHER": "x"})
    whole = from_flinkdeployment(flinkdeployment(config, memory="2g", jm_template=template))
    trimmed = whole.trimmed()
    assert "pipeline.name" not in trimmed.config and "high-availability.type" not in trimmed.config
    assert validate_source(trimmed).to_dict() == validate_source(whole).to_dict()
