"""What this machine lets the tests do that an ordinary user may not: the reason a test must skip, or None.

As root everything runs (CI). Without root, tests that need a network namespace owned by the machine
(the HA plane) skip, and tests that can make do with a user namespace (a Flink JobManager in private
mount and network namespaces, as rootless container tools run things) run when the kernel allows
unprivileged user namespaces. Each reason is one line saying what is missing and how to run the tests.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

__all__ = ["network_namespace_problem", "user_namespace_command", "user_namespace_problem"]


def network_namespace_problem(what: str, how: str) -> str | None:
    """Why `what` cannot have a network namespace of the machine's own here (it needs root), or None."""
    if os.geteuid() == 0:
        return None
    return f"{what} needs root for a network namespace of its own; run it as root: {how}"


def user_namespace_command() -> list[str]:
    """The `unshare` prefix giving a process private mount and network namespaces, rootless if need be."""
    command = ["unshare", "--mount", "--net", "--fork"]
    if os.geteuid() != 0:
        command[1:1] = ["--user", "--map-root-user"]
    return command


@functools.cache
def user_namespace_problem(what: str) -> str | None:
    """Why `what` cannot run in private mount and network namespaces here, or None when it can."""
    if shutil.which("unshare") is None:
        return f"{what} needs `unshare` (util-linux) for its own namespaces; install util-linux"
    probe = subprocess.run([*user_namespace_command(), "true"], capture_output=True, text=True, check=False)
    if probe.returncode == 0:
        return None
    reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit code {probe.returncode}"
    return (
        f"{what} needs private namespaces, and this kernel refuses unprivileged user namespaces ({reason}); "
        "run it as root, or allow them (sysctl kernel.unprivileged_userns_clone=1 or "
        "user.max_user_namespaces > 0)"
    )
