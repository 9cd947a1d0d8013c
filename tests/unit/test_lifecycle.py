"""Process lifecycle helpers of `flinkmem serve` that need no cluster."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time

from flinkmem.runtime import serve  # noqa: F401  # what `flinkmem serve` has imported when it freezes
from flinkmem.runtime.lifecycle import freeze_startup_objects


def test_startup_objects_are_frozen_out_of_collections() -> None:
    try:
        freeze_startup_objects()
        # The modules imported so far (flinkmem, kopf, the kubernetes client) are all frozen.
        assert gc.get_freeze_count() > 20_000
    finally:
        gc.unfreeze()


def test_a_child_tied_to_its_parent_dies_with_it() -> None:
    # A parent starts a child that ties itself to it and then reports its pid; the parent is killed.
    child = (
        "import os, time; from flinkmem.runtime.lifecycle import die_with_parent; "
        "die_with_parent(); print(os.getpid(), flush=True); time.sleep(60)"
    )
    relay = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {child!r}]).wait()"
    parent = subprocess.Popen([sys.executable, "-c", relay], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":  # a zombie waiting to be reaped is gone
                    return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the child outlived its parent")
