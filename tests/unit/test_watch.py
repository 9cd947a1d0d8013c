"""The webhook process's plain watches: the list handed over as ADDED, watch events as they come, the
resume point kept through bookmarks, a 410 answered by a new list that also tells what went meanwhile,
and failures retried; the source cache fed through them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from flinkmem.runtime import watch
from flinkmem.runtime.settings import DEFAULT_RESOURCE
from flinkmem.runtime.watch import ObjectWatch, cache_feeds, collection_paths
from flinkmem.sources.cache import SourceCache
from tests.unit.admission_harness import Lookup
from tests.unit.fixtures import flinkdeployment


def _obj(name: str, version: str, namespace: str = "jobs") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": version, "uid": f"u-{name}"}}


def _line(event_type: str, obj: Mapping[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}).encode()


class Script:
    """The API server: lists answered in turn, and one scripted stream of lines per watch request."""

    def __init__(self, lists: list[tuple[int, Any]], streams: list[list[bytes] | Exception]) -> None:
        self.lists = lists
        self.streams = streams
        self.requests: list[str] = []
        self.done = asyncio.Event()

    async def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        self.requests.append(f"{method} {path}")
        return self.lists.pop(0)

    async def lines(self, path: str, timeout: float) -> AsyncIterator[bytes]:
        self.requests.append(f"WATCH {path}")
        if not self.streams:
            self.done.set()
            await asyncio.Event().wait()  # the watch stays open, quiet
        step = self.streams.pop(0)
        if isinstance(step, Exception):
            raise step
        for line in step:
            yield line


def _run(script: Script, handler: Any, selector: str | None = None) -> ObjectWatch:
    w = ObjectWatch(script, "/apis/g/v/things", handler, selector)

    async def go() -> None:
        task = asyncio.create_task(w.run())
        await asyncio.wait_for(script.done.wait(), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())
    return w


def test_a_list_then_the_events_then_a_resume_from_the_last_version() -> None:
    seen: list[tuple[str, str]] = []
    script = Script(
        [(200, {"metadata": {"resourceVersion": "10"}, "items": [_obj("a", "9"), _obj("b", "10")]})],
        [
            [_line("MODIFIED", _obj("a", "11")), _line("DELETED", _obj("b", "12"))],
            [_line("BOOKMARK", {"metadata": {"resourceVersion": "20"}}), _line("ADDED", _obj("c", "21"))],
        ],
    )
    w = _run(script, lambda t, o: seen.append((t, o["metadata"]["name"])), "type in (x)")
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c")]
    assert script.requests[0] == "GET /apis/g/v/things?limit=100&labelSelector=type+in+%28x%29"
    # Each watch resumes where the last one ended (the bookmark's version included); one list only.
    assert [r for r in script.requests if r.startswith("GET")] == [script.requests[0]]
    assert "resourceVersion=10&" in script.requests[1]
    assert "resourceVersion=12&" in script.requests[2]
    assert "resourceVersion=21&" in script.requests[3]
    assert set(w.known) == {("jobs", "a"), ("jobs", "c")}


def test_gone_lists_again_and_tells_what_was_deleted_meanwhile() -> None:
    seen: list[tuple[str, str]] = []
    script = Script(
        [
            (200, {"metadata": {"resourceVersion": "10"}, "items": [_obj("a", "9"), _obj("b", "10")]}),
            (200, {"metadata": {"resourceVersion": "50"}, "items": [_obj("b", "40")]}),
        ],
        [[_line("ERROR", {"kind": "Status", "code": 410, "message": "too old"})]],
    )
    _run(script, lambda t, o: seen.append((t, o["metadata"]["name"])))
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "b"), ("DELETED", "a")]
    assert "resourceVersion=50&" in script.requests[-1]


def test_a_failure_is_retried_and_a_bad_object_does_not_stop_the_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "BACKOFFS", (0.0,))
    seen: list[str] = []

    def handler(event_type: str, obj: Mapping[str, Any]) -> None:
        if obj["metadata"]["name"] == "bad":
            raise ValueError("bad object")
        seen.append(obj["metadata"]["name"])

    script = Script(
        [(500, None), (200, {"metadata": {"resourceVersion": "1"}, "items": [_obj("bad", "1"), _obj("a", "1")]})],
        [ConnectionResetError("dropped"), [_line("ADDED", _obj("c", "3"))]],
    )
    _run(script, handler)
    assert seen == ["a", "c"]
    # After the first failure it resumes from where it was; a list failure lists again.
    assert [r.split("?")[0] for r in script.requests] == [
        "GET /apis/g/v/things",
        "GET /apis/g/v/things",
        "WATCH /apis/g/v/things",
        "WATCH /apis/g/v/things",
        "WATCH /apis/g/v/things",
    ]


def test_a_long_list_comes_in_pages() -> None:
    seen: list[str] = []
    script = Script(
        [
            (200, {"metadata": {"continue": "next"}, "items": [_obj("a", "5")]}),
            (200, {"metadata": {"resourceVersion": "10"}, "items": [_obj("b", "10")]}),
        ],
        [],
    )
    _run(script, lambda t, o: seen.append(o["metadata"]["name"]))
    assert seen == ["a", "b"]
    assert "continue=next" in script.requests[1]
    assert "resourceVersion=10&" in script.requests[2]


def test_the_paths_are_per_watched_namespace_or_cluster_wide() -> None:
    assert collection_paths("/api/v1/{ns}configmaps", ()) == ["/api/v1/configmaps"]
    assert collection_paths("/api/v1/{ns}configmaps", ("a", "b")) == [
        "/api/v1/namespaces/a/configmaps",
        "/api/v1/namespaces/b/configmaps",
    ]


def test_the_cache_feeds_remember_and_forget_deployments_and_flinks_configmaps() -> None:
    cache = SourceCache(Lookup())
    feeds = cache_feeds(Script([], []), DEFAULT_RESOURCE, ("jobs",), cache)
    assert [f.path for f in feeds] == [
        "/apis/flink.apache.org/v1beta1/namespaces/jobs/flinkdeployments",
        "/api/v1/namespaces/jobs/configmaps",
    ]
    assert feeds[1].label_selector == "type in (flink-native-kubernetes,flink-standalone-kubernetes)"
    deployments, configmaps = feeds
    deployments._deliver("ADDED", flinkdeployment(memory="2g"))
    assert cache.cached_deployment("jobs", "demo") is not None
    deployments._deliver("DELETED", flinkdeployment(memory="2g"))
    assert cache.cached_deployment("jobs", "demo") is None
    config = {"config.yaml": "jobmanager.memory.process.size: 2g\n"}
    flink = {"metadata": {"name": "flink-config-demo", "namespace": "jobs"}, "data": config}
    configmaps._deliver("ADDED", flink)
    configmaps._deliver("ADDED", {"metadata": {"name": "other", "namespace": "jobs"}, "data": config})
    assert set(cache.configmaps) == {("jobs", "demo")}
    configmaps._deliver("DELETED", flink)
    assert cache.configmaps == {}
