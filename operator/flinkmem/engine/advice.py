"""The sizes to suggest in a refusal: the least total that would make a configuration work.

Flink only says what is wrong; flinkmem's fixes carry the number to use. Both roles search the same
way: a predicate over a candidate size, bisected over every byte count and then settled on a whole
MiB, and the least process size whose derived Total Flink Memory reaches a target.
"""

from __future__ import annotations

from collections.abc import Callable

from flinkmem.engine.errors import FlinkMemError
from flinkmem.engine.options import Config, MemoryOption
from flinkmem.engine.process import ProcessMemoryOptions, clamp, read_range
from flinkmem.engine.sizes import MAX_BYTES, MIB, format_size, multiply

__all__ = ["least_process_for", "least_total_flink", "raise_total_fix"]


def least_total_flink(fits: Callable[[int], bool]) -> int | None:
    """The smallest whole-MiB total for which `fits` holds (None if none does), for advice."""
    if not fits(MAX_BYTES):
        return None
    low, high = 0, MAX_BYTES
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    mebibytes = -(-low // MIB)
    # The byte-level search may land on a local step; settle on a whole MiB that fits.
    for _ in range(64):
        if mebibytes * MIB > MAX_BYTES:
            return low
        if fits(mebibytes * MIB):
            return mebibytes * MIB
        mebibytes += 1
    return low


def least_process_for(config: Config, options: ProcessMemoryOptions, total_flink: int) -> int | None:
    """The smallest whole-MiB process size whose derived Total Flink Memory is at least `total_flink`."""
    try:
        metaspace = options.metaspace.read(config)
        rf = read_range(config, options.overhead)
    except FlinkMemError:
        return None

    def fits(process: int) -> bool:
        overhead = clamp(multiply(process, rf.fraction), rf)
        return process - metaspace - overhead >= total_flink

    return least_total_flink(fits)


def raise_total_fix(
    config: Config, options: ProcessMemoryOptions, source: MemoryOption, needed_flink: int | None, lower: str
) -> str:
    """A fix raising `source` (the total Flink or total process option) to what `needed_flink` takes."""
    if needed_flink is None:
        return f"{lower}; no {source.key} is large enough as configured"
    needed = needed_flink if source is options.total_flink else least_process_for(config, options, needed_flink)
    if needed is None:
        return lower
    return f"raise {source.key} to at least {format_size(needed)}, or {lower}"
