"""Client-side throttling of the controller's writes."""

from __future__ import annotations

import asyncio

import pytest

from flinkmem.runtime.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_goes_at_once_and_then_the_rate_applies() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    # Further reservations queue up behind each other, a tenth of a second apart.
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])


def test_tokens_come_back_with_time_but_never_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock)
    bucket.reserve()
    bucket.reserve()
    clock.now += 0.5  # one token back
    assert bucket.reserve() == 0
    assert bucket.reserve() == pytest.approx(0.5)
    clock.now += 3600  # a long quiet hour still only refills the burst
    assert [bucket.reserve() for _ in range(2)] == [0, 0]
    assert bucket.reserve() == pytest.approx(0.5)


def test_rate_zero_means_unlimited() -> None:
    bucket = TokenBucket(rate=0, burst=0, clock=FakeClock())
    assert all(bucket.reserve() == 0 for _ in range(10_000))


def test_a_throttled_bucket_needs_a_burst() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=5, burst=0)


def test_acquire_sleeps_for_the_reserved_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def record(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("flinkmem.runtime.ratelimit.asyncio.sleep", record)
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=1, clock=clock)

    async def scenario() -> None:
        for _ in range(3):
            await bucket.acquire()

    asyncio.run(scenario())
    # The first goes at once (no sleep); the next two wait for their tokens at 20 per second.
    assert slept == pytest.approx([0.05, 0.1])
