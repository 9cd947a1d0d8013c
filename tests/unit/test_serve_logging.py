"""What `flinkmem serve` logs: refusals yes, one line per successful admission no (unless --verbose)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from flinkmem.runtime import serve


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kopf_objects() -> Iterator[tuple[logging.Logger, Collect]]:
    logger, root = logging.getLogger("kopf.objects"), logging.getLogger()
    saved_level, saved_filters, saved_root_level = logger.level, list(logger.filters), root.level
    # Under pytest the root logger already has handlers, so basicConfig leaves its level alone;
    # set it as basicConfig would for a verbose serve, so that only flinkmem's own choice is tested.
    root.setLevel(logging.DEBUG)
    collect = Collect()
    logger.addHandler(collect)
    try:
        yield logger, collect
    finally:
        logger.removeHandler(collect)
        logger.setLevel(saved_level)
        logger.filters[:] = saved_filters
        root.setLevel(saved_root_level)


@pytest.mark.parametrize("verbose", [False, True])
def test_successes_are_logged_only_when_verbose(kopf_objects: tuple[logging.Logger, Collect], verbose: bool) -> None:
    logger, collect = kopf_objects
    serve._configure_logging(verbose)
    logger.info("Webhook 'mutate-flink-pod' succeeded.")
    logger.error("Webhook 'validate-flinkdeployment' failed permanently: flinkmem refused FlinkDeployment x: ...")
    logger.warning("Handler 'reconcile' failed temporarily: boom")
    messages = [(r.levelname, r.getMessage().split(":")[0]) for r in collect.records]
    refusal = ("INFO", "Webhook 'validate-flinkdeployment' failed permanently")
    problem = ("WARNING", "Handler 'reconcile' failed temporarily")
    success = ("INFO", "Webhook 'mutate-flink-pod' succeeded.")
    assert messages == ([success, refusal, problem] if verbose else [refusal, problem])
