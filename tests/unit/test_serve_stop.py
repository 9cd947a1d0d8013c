"""`flinkmem serve`'s signal handling: SIGTERM is acted on while the event loop is busy with a review."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from flinkmem.runtime.serve import _Stop


def _sleep_forever() -> None:
    while True:
        time.sleep(60)


@pytest.fixture
def own_signal_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_sigterm_reaches_the_controller_while_the_event_loop_is_busy(own_signal_handlers: None) -> None:
    """The event loop is held by a synchronous piece of work that only ends once the controller process
    has died of the SIGTERM passed on to it: only a handler that does not need the loop can end it."""
    controller = multiprocessing.get_context("spawn").Process(target=_sleep_forever, daemon=True)
    controller.start()
    stop = _Stop(controller)
    stop.install()
    begun: list[signal.Signals] = []
    deadline = time.monotonic() + 120  # only a hang misses it

    async def busy_review() -> None:
        stop.attach(asyncio.get_running_loop(), begun.append)
        os.kill(os.getpid(), signal.SIGTERM)  # as the kubelet sends it, to the main process
        while controller.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.01)  # holds the event loop, as a long review would

    def loop() -> None:
        async def main() -> None:
            await busy_review()
            await asyncio.sleep(0)  # the loop is free again: the stop it was asked for begins

        asyncio.run(main())

    thread = threading.Thread(target=loop)
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.5)  # as serve_forever waits: the handler runs here
    finally:
        if controller.is_alive():
            controller.kill()
        controller.join(10)
    assert controller.exitcode == -signal.SIGTERM, "the controller got SIGTERM while the loop was busy"
    assert stop.signal == signal.SIGTERM
    assert begun == [signal.SIGTERM], "the loop's graceful stop began once it was free"
