"""The iteration order of Java's `HashMap` and `HashSet`, which Flink's generated strings follow.

Flink builds the TaskManager's dynamic configs, and the set of its extended resources, in hash maps
and prints them in iteration order: buckets in ascending index, entries of one bucket in insertion
order. A resize splits each bucket without reordering it, so the order is the insertion order
stably sorted by the bucket index at the final table size.

Everything here is linear in the keys' total length (the sort aside); only short keys' hashes are
cached, so that long names cannot pin memory in the cache.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

__all__ = ["hash_set_order", "hashmap_order", "java_string_hash"]

_LOAD_FACTOR = 0.75
_DEFAULT_CAPACITY = 16


# Keys up to this length have their hash cached (at most 1024 of them).
_CACHED_CHARS = 256


def java_string_hash(text: str) -> int:
    """`String.hashCode()` as an unsigned 32-bit value (over UTF-16 code units)."""
    if len(text) <= _CACHED_CHARS:
        return _cached_hash(text)
    return _string_hash(text)


def _string_hash(text: str) -> int:
    h = 0
    for unit in _utf16_units(text):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h


_cached_hash = functools.lru_cache(maxsize=1024)(_string_hash)


def _utf16_units(text: str) -> Iterable[int]:
    for char in text:
        code = ord(char)
        if code < 0x10000:
            yield code
        else:
            code -= 0x10000
            yield 0xD800 + (code >> 10)
            yield 0xDC00 + (code & 0x3FF)


def _bucket(key: str, capacity: int) -> int:
    h = java_string_hash(key)
    return (h ^ (h >> 16)) & (capacity - 1)


def _capacity_after_puts(count: int, capacity: int = _DEFAULT_CAPACITY) -> int:
    """The table size after `count` distinct puts: it doubles whenever the size exceeds 3/4 of it."""
    while count > capacity * _LOAD_FACTOR:
        capacity *= 2
    return capacity


def hashmap_order(keys: Sequence[str], capacity: int = _DEFAULT_CAPACITY) -> list[str]:
    """Iteration order of a `HashMap` (default table, or one of `capacity`) after putting distinct `keys`."""
    final = _capacity_after_puts(len(keys), capacity)
    return sorted(keys, key=lambda key: _bucket(key, final))


def hash_set_order(items: Sequence[str]) -> list[str]:
    """Iteration order of `new HashSet<>(list)`: sized for the list (duplicates included), first wins."""
    # HashSet(Collection) asks for max((int) (size / .75f) + 1, 16), rounded up to a power of two.
    wanted = max(int(len(items) / _LOAD_FACTOR) + 1, _DEFAULT_CAPACITY)
    capacity = 1 << (wanted - 1).bit_length()
    return hashmap_order(list(dict.fromkeys(items)), capacity)
