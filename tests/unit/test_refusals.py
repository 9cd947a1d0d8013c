"""Refusals are told once per (namespace, name, rule) and interval, then counted."""

from __future__ import annotations

import logging

import pytest

from flinkmem.runtime.refusals import RefusalLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_identical_refusals_is_one_line_and_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RefusalLog(logging.getLogger("test.refusals"), interval=60, clock=clock)
    key = ("jobs", "demo", "no-sizing-option")
    with caplog.at_level(logging.INFO, logger="test.refusals"):
        assert log.refused(key, "refused demo") is True
        assert [log.refused(key, "refused demo") for _ in range(500)] == [False] * 500
        assert log.refused(("jobs", "other", "no-sizing-option"), "refused other") is True
        clock.now += 61
        assert log.refused(key, "refused demo") is True
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "refused demo",
        "refused other",
        "refused demo (500 identical refusals in the last 60 s were counted, not logged)",
    ]


def test_flush_tells_the_counted_repeats_once_the_interval_is_over(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RefusalLog(logging.getLogger("test.refusals"), interval=60, clock=clock)
    key = ("jobs", "demo", "invalid-value")
    with caplog.at_level(logging.INFO, logger="test.refusals"):
        log.refused(key, "refused demo")
        log.refused(key, "refused demo")
        log.flush()  # the interval is not over: nothing yet
        clock.now += 60
        log.flush()
        log.flush()  # said once
    assert [r.getMessage() for r in caplog.records] == [
        "refused demo",
        "refused FlinkDeployment jobs/demo again 1 times (invalid-value) in the last 60 s",
    ]


def test_the_keys_it_remembers_are_bounded() -> None:
    log = RefusalLog(logging.getLogger("test.refusals"), max_keys=3)
    for index in range(10):
        log.refused(("ns", f"name-{index}", "rule"), "x")
    assert len(log._seen) == 3
