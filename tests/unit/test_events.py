"""The Event poster: never blocks its caller, paced by a token bucket, fair between namespaces, bounded,
and light to hold."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flinkmem.conventions import EVENT_MESSAGE_LIMIT
from flinkmem.runtime.events import MAX_PER_NAMESPACE, EventPoster
from flinkmem.runtime.ratelimit import TokenBucket


class Sink:
    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.posted: list[tuple[Mapping[str, Any], str]] = []

    async def post_event(self, target: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.posted.append((target, message))


def _deployment(name: str, namespace: str = "team") -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": {"a": "b"}},
        "spec": {"flinkConfiguration": {"x": "y" * 10_000}},
    }


def test_events_beyond_the_burst_wait_for_their_tokens_in_order() -> None:
    async def run() -> tuple[list[str], list[str]]:
        sink = Sink()
        poster = EventPoster(sink, TokenBucket(rate=4, burst=2))
        for i in range(5):
            poster.post(_deployment(f"fd-{i}"), "Normal", "MemoryResolved", f"event {i}")
        for _ in range(3):
            await asyncio.sleep(0)
        early = [message for _, message in sink.posted]
        await poster.drain()
        return early, [message for _, message in sink.posted]

    early, everything = asyncio.run(run())
    assert early == ["event 0", "event 1"]
    assert everything == [f"event {i}" for i in range(5)]


def test_a_full_poster_drops_and_counts_instead_of_growing() -> None:
    async def run() -> tuple[int, int, list[str]]:
        gate = asyncio.Event()
        sink = Sink(gate)
        poster = EventPoster(sink, max_pending=3)
        for i in range(7):
            poster.post(_deployment(f"fd-{i}"), "Normal", "MemoryResolved", f"event {i}")
        waiting = poster.pending
        gate.set()
        await poster.drain()
        return waiting, poster.dropped, [message for _, message in sink.posted]

    waiting, dropped, posted = asyncio.run(run())
    assert (waiting, dropped) == (3, 4)
    assert posted == ["event 0", "event 1", "event 2"]


def test_a_waiting_event_holds_only_the_reference_and_a_redacted_message() -> None:
    async def run() -> list[tuple[Mapping[str, Any], str]]:
        sink = Sink()
        poster = EventPoster(sink)
        poster.post(_deployment("fd"), "Warning", "MemoryRefused", "s3.secret-key: abc123 is wrong")
        await poster.drain()
        return sink.posted

    [(target, message)] = asyncio.run(run())
    assert target == {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "fd", "namespace": "team", "uid": "uid-fd"},
    }
    assert "abc123" not in message and "s3.secret-key" in message


def test_a_stop_gives_up_the_events_still_waiting_for_their_turn() -> None:
    async def run() -> tuple[int, list[str]]:
        sink = Sink()
        poster = EventPoster(sink, TokenBucket(rate=0.01, burst=1))  # the second waits 100 s
        for i in range(3):
            poster.post(_deployment(f"fd-{i}"), "Normal", "MemoryResolved", f"event {i}")
        await poster.drain(timeout=0.2)
        return poster.dropped, [message for _, message in sink.posted]

    dropped, posted = asyncio.run(run())
    assert (dropped, posted) == (2, ["event 0"])


class GrantedTokens(TokenBucket):
    """A bucket whose tokens the test hands out, so that turns are taken exactly when it says."""

    def __init__(self) -> None:
        super().__init__(rate=1, burst=1)
        self.granted: asyncio.Queue[None] = asyncio.Queue()

    async def acquire(self) -> None:
        await self.granted.get()

    async def grant(self, tokens: int) -> None:
        for _ in range(tokens):
            self.granted.put_nowait(None)
        for _ in range(3 * tokens + 3):
            await asyncio.sleep(0)  # the turns are taken and their posts run


def test_a_namespaces_flood_delays_another_namespaces_event_by_one_turn() -> None:
    async def run() -> tuple[list[str], list[str]]:
        sink = Sink()
        tokens = GrantedTokens()
        poster = EventPoster(sink, tokens)
        for i in range(50):
            poster.post(_deployment(f"fd-{i}", "flood"), "Normal", "MemoryResolved", f"flood {i}")
        poster.post(_deployment("quiet-0", "quiet"), "Normal", "MemoryResolved", "quiet 0")
        await tokens.grant(5)
        first = [message for _, message in sink.posted]
        poster.post(_deployment("quiet-1", "quiet"), "Normal", "MemoryResolved", "quiet 1")
        await tokens.grant(47)
        await poster.drain()
        return first, [message for _, message in sink.posted]

    first, posted = asyncio.run(run())
    # The namespaces take turns: the quiet one's Event went second, behind one of the flood's.
    assert first == ["flood 0", "quiet 0", "flood 1", "flood 2", "flood 3"]
    # Posted while 46 of the flood still wait, it goes after the turn the flood had already been given.
    assert posted[5:7] == ["flood 4", "quiet 1"]
    assert [m for m in posted if m.startswith("flood")] == [f"flood {i}" for i in range(50)]
    assert len(posted) == 52


def test_one_namespace_holds_at_most_its_share_of_the_waiting_events() -> None:
    async def run() -> tuple[int, int, int, list[str]]:
        sink = Sink()
        poster = EventPoster(sink, TokenBucket(rate=0.01, burst=1), max_pending=10, max_per_namespace=4)
        for i in range(20):
            poster.post(_deployment(f"fd-{i}", "flood"), "Normal", "MemoryResolved", f"flood {i}")
        flood_dropped = poster.dropped
        for i in range(3):
            poster.post(_deployment(f"fd-{i}", "quiet"), "Normal", "MemoryResolved", f"quiet {i}")
        quiet_dropped, waiting = poster.dropped - flood_dropped, poster.pending
        await poster.drain(timeout=0.1)
        return flood_dropped, quiet_dropped, waiting, [message for _, message in sink.posted]

    flood_dropped, quiet_dropped, waiting, posted = asyncio.run(run())
    assert (flood_dropped, quiet_dropped, waiting) == (16, 0, 4 + 3)
    assert posted == ["flood 0"]  # the burst's one token; the next turn (quiet's) is 100 s away


def test_by_default_one_namespace_keeps_a_burst_of_a_thousand_and_a_waiting_message_is_cut() -> None:
    async def run() -> tuple[int, int, int, int]:
        sink = Sink()
        poster = EventPoster(sink, GrantedTokens())
        for i in range(MAX_PER_NAMESPACE + 1):
            poster.post(_deployment(f"fd-{i}", "burst"), "Warning", "MemoryConflict", "memory " * 1000)
        waiting, dropped = poster.pending, poster.dropped
        poster.post(_deployment("other", "other"), "Normal", "MemoryResolved", "fine")
        longest = max(len(event.message) for line in poster._lines.values() for event in line)
        await poster.drain(timeout=0)
        return waiting, dropped, poster.pending, longest

    waiting, dropped, after, longest = asyncio.run(run())
    assert (waiting, dropped) == (1000, 1)
    assert after == 0
    assert longest == EVENT_MESSAGE_LIMIT == 1024


def test_after_a_stop_that_cancelled_the_turns_before_they_ran_the_poster_still_posts() -> None:
    async def run() -> tuple[int, list[str]]:
        sink = Sink()
        poster = EventPoster(sink, TokenBucket(rate=1000, burst=1))
        poster.post(_deployment("fd-0"), "Normal", "MemoryResolved", "event 0")
        await poster.drain(timeout=0)  # the turns never ran: given up
        poster.post(_deployment("fd-1"), "Normal", "MemoryResolved", "event 1")
        await asyncio.wait_for(poster.drain(), timeout=30)  # only a hang misses this
        return poster.dropped, [message for _, message in sink.posted]

    dropped, posted = asyncio.run(run())
    assert (dropped, posted) == (1, ["event 1"])


def test_a_waiting_reference_is_cut_to_the_longest_name_kubernetes_accepts() -> None:
    async def run() -> Mapping[str, Any]:
        sink = Sink()
        poster = EventPoster(sink)
        target = {
            "apiVersion": "v" * 100_000,
            "kind": "K" * 100_000,
            "metadata": {"name": "n" * 100_000, "namespace": "team", "uid": 7},
        }
        poster.post(target, "Warning", "MemoryDrift", "x")
        await poster.drain()
        return sink.posted[0][0]

    target = asyncio.run(run())
    assert len(target["apiVersion"]) == len(target["kind"]) == len(target["metadata"]["name"]) == 253
    assert target["metadata"]["uid"] is None  # not a string: left out, never stringified


def test_when_all_is_full_the_longest_line_gives_way_to_another_namespaces_first_event() -> None:
    async def run() -> tuple[list[str], int]:
        sink = Sink()
        tokens = GrantedTokens()
        poster = EventPoster(sink, tokens, max_pending=6, max_per_namespace=4)
        for i in range(4):
            poster.post(_deployment(f"a-{i}", "a"), "Normal", "MemoryResolved", f"a {i}")
        for i in range(2):
            poster.post(_deployment(f"b-{i}", "b"), "Normal", "MemoryResolved", f"b {i}")
        # Full: the longest line gives way while it is longer than the newcomer's would be.
        poster.post(_deployment("c-0", "c"), "Normal", "MemoryResolved", "c 0")  # a (4) gives "a 3"
        poster.post(_deployment("c-1", "c"), "Normal", "MemoryResolved", "c 1")  # a (3) gives "a 2"
        poster.post(_deployment("c-2", "c"), "Normal", "MemoryResolved", "c 2")  # no line longer than 3: dropped
        await tokens.grant(6)
        await poster.drain()
        return [message for _, message in sink.posted], poster.dropped

    posted, dropped = asyncio.run(run())
    assert sorted(posted) == ["a 0", "a 1", "b 0", "b 1", "c 0", "c 1"]
    assert dropped == 3
