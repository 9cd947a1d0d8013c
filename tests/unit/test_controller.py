"""The controller's checks as methods: the annotation and Event per FlinkDeployment, drift reported once
per difference, eviction only where flinkmem enforces, a FlinkDeployment against Flink's ConfigMap, and
its writes going through the token bucket."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from typing import Any

from flinkmem.conventions import RESOLVED_ANNOTATION
from flinkmem.decisions.policy import ValidationMode
from flinkmem.runtime.controller import Controller
from flinkmem.runtime.events import EventPoster
from flinkmem.runtime.kopfsetup import POD_SELECTOR
from flinkmem.runtime.metrics import Metrics
from flinkmem.runtime.settings import Settings
from flinkmem.sources.cache import SourceCache
from tests.unit.admission_harness import RecordedEvents
from tests.unit.fixtures import flinkdeployment, jobmanager_pod


class FakeApi:
    def __init__(self, pods: list[dict[str, Any]] | None = None) -> None:
        self.pods = pods or []
        self.evicted: list[str] = []
        self.listed: list[tuple[str, str]] = []

    async def list_pods(self, namespace: str, label_selector: str) -> list[Mapping[str, Any]]:
        self.listed.append((namespace, label_selector))
        return list(self.pods)

    async def evict_pod(self, namespace: str, name: str) -> bool:
        self.evicted.append(f"{namespace}/{name}")
        return True

    async def get_deployment(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None


def make(settings: Settings | None = None, pods: list[dict[str, Any]] | None = None) -> tuple[Controller, Any]:
    api = FakeApi(pods)
    sink = RecordedEvents()
    controller = Controller(settings or Settings(controller_qps=0), api, SourceCache(api), Metrics(), EventPoster(sink))
    return controller, sink


def run(controller: Controller, coroutine: Any) -> Any:
    async def go() -> Any:
        result = await coroutine
        await controller.settle()
        await controller.events.drain()
        return result

    return asyncio.run(go())


def named_pod(name: str = "demo-jm-1", uid: str = "pod-1") -> dict[str, Any]:
    pod = jobmanager_pod()
    pod["metadata"].update({"name": name, "uid": uid})
    return pod


def test_a_new_flinkdeployment_is_annotated_once_with_an_event() -> None:
    controller, sink = make()
    obj = flinkdeployment(memory="2g")
    annotation = run(controller, controller.on_flinkdeployment("ADDED", obj))
    assert annotation is not None and json.loads(annotation)["jobmanager"]["memory"]["jvmHeap"] == 1530082096
    assert [(name, reason) for name, _, reason, _ in sink.posted] == [("demo", "MemoryResolved")]
    annotated = copy.deepcopy(obj)
    annotated["metadata"]["annotations"] = {RESOLVED_ANNOTATION: annotation}
    assert run(controller, controller.on_flinkdeployment("MODIFIED", annotated)) is None
    assert len(sink.posted) == 1


def test_a_conflict_is_a_warning_event_and_deletion_forgets_the_deployment() -> None:
    controller, sink = make()
    obj = flinkdeployment({"jobmanager.memory.heap.size": "2g"}, memory="1g")
    assert run(controller, controller.on_flinkdeployment("ADDED", obj)) is not None
    assert [(kind, reason) for _, kind, reason, _ in sink.posted] == [("Warning", "MemoryConflict")]
    assert controller.cache.cached_deployment("jobs", "demo") is not None
    run(controller, controller.on_flinkdeployment("DELETED", obj))
    assert controller.cache.cached_deployment("jobs", "demo") is None


def test_out_of_scope_deployments_are_neither_annotated_nor_checked() -> None:
    controller, sink = make(Settings(namespaces=("other",), controller_qps=0), [named_pod()])
    assert run(controller, controller.on_flinkdeployment("ADDED", flinkdeployment(memory="2g"))) is None
    assert sink.posted == [] and controller.api.listed == []  # type: ignore[attr-defined]


def test_pods_admitted_before_their_deployment_are_checked_when_it_arrives_and_told_once() -> None:
    controller, sink = make(pods=[named_pod()])
    run(controller, controller.on_pod("ADDED", named_pod()))  # the watch shows it; nothing to size it from
    assert sink.posted == []
    run(controller, controller.on_flinkdeployment("ADDED", flinkdeployment(memory="2g")))
    assert controller.api.listed == [("jobs", "app=demo")]  # type: ignore[attr-defined]
    drift = [message for _, _, reason, message in sink.posted if reason == "MemoryDrift"]
    assert len(drift) == 1 and "needs requests.memory=2048Mi" in drift[0]
    # The same pod seen again by its watch: already reported.
    assert run(controller, controller.check_pod(named_pod())) is not None
    assert sum(reason == "MemoryDrift" for _, _, reason, _ in sink.posted) == 1
    # Deleted, it is forgotten, so the set stays as small as the live pods.
    run(controller, controller.on_pod("DELETED", named_pod()))
    assert controller.drift_seen == set() and controller.pods_seen == {}


def test_a_new_deployment_none_of_whose_pods_was_seen_costs_no_list_and_its_pods_are_checked_as_they_come() -> None:
    controller, sink = make(pods=[named_pod()])
    other = named_pod(name="other-jm-1", uid="pod-9")
    other["metadata"]["labels"]["app"] = "other"
    run(controller, controller.on_pod("ADDED", other))  # another cluster's pod
    assert controller.pods_seen == {("jobs", "other"): {"pod-9"}}
    run(controller, controller.on_flinkdeployment("ADDED", flinkdeployment(memory="2g")))
    assert controller.api.listed == []  # type: ignore[attr-defined]
    # Its first pod, shown by the watch after the FlinkDeployment was cached: checked on arrival.
    run(controller, controller.on_pod("ADDED", named_pod()))
    drift = [message for _, _, reason, message in sink.posted if reason == "MemoryDrift"]
    assert len(drift) == 1 and "needs requests.memory=2048Mi" in drift[0]


def test_drifted_pods_are_evicted_only_in_enforce_mode_with_evict_drifted() -> None:
    for mode, evict, expected in (
        (ValidationMode.ENFORCE, True, ["jobs/demo-jm-1"]),
        (ValidationMode.WARN, True, []),
        (ValidationMode.ENFORCE, False, []),
    ):
        controller, sink = make(Settings(validation_mode=mode, evict_drifted=evict, controller_qps=0))
        controller.cache.remember_deployment(flinkdeployment(memory="2g"))
        run(controller, controller.check_pod(named_pod()))
        assert controller.api.evicted == expected  # type: ignore[attr-defined]
        reasons = [reason for _, _, reason, _ in sink.posted]
        assert reasons == (["MemoryDrift", "MemoryDriftEvicted"] if expected else ["MemoryDrift"])


def test_without_pod_sizing_no_pod_drifts() -> None:
    controller, sink = make(Settings(pod_mutation=False, controller_qps=0))
    controller.cache.remember_deployment(flinkdeployment(memory="2g"))
    assert run(controller, controller.check_pod(named_pod())) is None
    assert sink.posted == []


def _configmap(text: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "flink-config-demo", "namespace": "jobs", "labels": {"type": "flink-native-kubernetes"}},
        "data": {"config.yaml": text},
    }


def test_a_configmap_that_resolves_differently_is_reported_once_per_difference() -> None:
    controller, sink = make()
    run(controller, controller.on_flinkdeployment("ADDED", flinkdeployment(memory="2g")))
    sink.posted.clear()
    same = "jobmanager.memory.process.size: 2048m\ntaskmanager.memory.process.size: 1728m\n"
    run(controller, controller.on_configmap("ADDED", _configmap(same)))
    assert sink.posted == []
    other = same + "jobmanager.memory.jvm-metaspace.size: 512m\n"
    run(controller, controller.on_configmap("MODIFIED", _configmap(other)))
    run(controller, controller.on_configmap("MODIFIED", _configmap(other)))  # the same data again
    differs = [message for _, _, reason, message in sink.posted if reason == "MemoryConfigDiffers"]
    assert len(differs) == 1 and "jobmanager.memory.jvm-metaspace.size" in differs[0]


def test_a_configmap_without_a_deployment_checks_the_clusters_pods() -> None:
    controller, sink = make(pods=[named_pod()])
    run(controller, controller.on_pod("ADDED", named_pod()))
    run(controller, controller.on_configmap("ADDED", _configmap("jobmanager.memory.process.size: 2g\n")))
    assert controller.api.listed == [("jobs", "app=demo")]  # type: ignore[attr-defined]
    assert [reason for _, _, reason, _ in sink.posted] == ["MemoryDrift"]


def test_writes_go_through_the_token_bucket() -> None:
    controller, _ = make(Settings(controller_qps=5, controller_burst=2))
    reserved: list[float] = []
    original = controller.throttle.reserve

    def counting() -> float:
        reserved.append(original())
        return 0.0

    controller.throttle.reserve = counting  # type: ignore[method-assign]
    for index in range(3):
        run(controller, controller.on_flinkdeployment("ADDED", flinkdeployment(memory="2g", name=f"fd-{index}")))
    # One token per annotated FlinkDeployment; the third waits (a burst of two, five a second).
    assert len(reserved) == 3 and reserved[:2] == [0.0, 0.0] and reserved[2] > 0


def test_an_excluded_namespace_is_never_checked_or_evicted() -> None:
    settings = Settings(excluded_namespaces=("jobs",), evict_drifted=True, controller_qps=0)
    controller, sink = make(settings, [named_pod()])
    controller.cache.remember_deployment(flinkdeployment(memory="2g"))
    assert run(controller, controller.check_pod(named_pod())) is None
    assert run(controller, controller.on_flinkdeployment("ADDED", flinkdeployment(memory="2g"))) is None
    assert sink.posted == [] and controller.api.evicted == []  # type: ignore[attr-defined]


def test_follow_ups_run_after_the_handler_once_per_change() -> None:
    # The handler returns while the follow-up still waits on the API, so kopf can drop the event's
    # object; a change meanwhile runs the follow-up once more afterwards, not once per event.
    controller, _ = make(pods=[named_pod()])
    controller.pods_seen[("jobs", "demo")] = {"pod-1"}  # the watch has shown the pod
    api: FakeApi = controller.api  # type: ignore[assignment]
    release = asyncio.Event()
    listing = api.list_pods

    async def blocked_list(namespace: str, label_selector: str) -> list[Mapping[str, Any]]:
        await release.wait()
        return await listing(namespace, label_selector)

    api.list_pods = blocked_list  # type: ignore[method-assign]

    async def scenario() -> None:
        async with asyncio.timeout(30):  # only a hang misses it
            await controller.on_configmap("ADDED", _configmap("jobmanager.memory.process.size: 2g\n"))
            for size in ("3g", "4g", "5g"):
                await controller.on_configmap("MODIFIED", _configmap(f"jobmanager.memory.process.size: {size}\n"))
            assert api.listed == []  # every handler returned; the first follow-up still waits
            release.set()
            await controller.settle()
        await controller.events.drain()

    asyncio.run(scenario())
    assert api.listed == [("jobs", "app=demo")] * 2


def test_pods_flinkmem_sized_are_listed_when_their_source_changes_or_was_listed_at_start() -> None:
    # The pod watch never shows sized pods (kopfsetup.POD_SELECTOR); their cluster is listed in full
    # when its FlinkDeployment changes, or when it comes in kopf's listing at start.
    controller, _ = make(pods=[named_pod()])
    api: FakeApi = controller.api  # type: ignore[assignment]
    run(controller, controller.on_flinkdeployment("ADDED", flinkdeployment(memory="2g")))
    assert api.listed == []
    run(controller, controller.on_flinkdeployment("MODIFIED", flinkdeployment(memory="2g")))
    assert api.listed == []  # its memory is as it was
    run(controller, controller.on_flinkdeployment("MODIFIED", flinkdeployment(memory="3g")))
    assert api.listed == [("jobs", "app=demo")]
    restarted, _ = make(pods=[named_pod()])
    run(restarted, restarted.on_flinkdeployment("None", flinkdeployment(memory="2g")))
    assert restarted.api.listed == [("jobs", "app=demo")]  # type: ignore[attr-defined]


def test_the_pod_watch_leaves_out_pods_flinkmem_sized() -> None:
    assert POD_SELECTOR == "component in (jobmanager,taskmanager),!flinkmem.io/sized"
