"""Flink 1.x's legacy heap sources, shared by the JobManager and TaskManager (notes section 5.0)."""

from __future__ import annotations

import pytest

from flinkmem.engine.errors import InvalidOptionValue, Rule
from flinkmem.engine.legacyheap import LegacyHeapOptions, map_legacy_heap, read_legacy_heap
from flinkmem.engine.options import IntOption, MemoryOption
from flinkmem.engine.process import Notice

HEAP = MemoryOption("test.heap.size")
HEAP_MB = IntOption("test.heap.mb")
TARGET = MemoryOption("test.memory.process.size")
OPTIONS = LegacyHeapOptions("FLINK_TEST_HEAP", HEAP, HEAP_MB, TARGET)


def test_environment_then_size_then_mebibytes() -> None:
    config = {"test.heap.size": "2g", "test.heap.mb": "512"}
    assert read_legacy_heap(config, OPTIONS, "1g") == (1 << 30, "environment variable FLINK_TEST_HEAP")
    assert read_legacy_heap(config, OPTIONS, None) == (2 << 30, "test.heap.size")
    assert read_legacy_heap({"test.heap.mb": "512"}, OPTIONS, None) == (512 << 20, "test.heap.mb")
    assert read_legacy_heap({}, OPTIONS, None) is None


@pytest.mark.parametrize(("config", "env"), [({}, "lots"), ({"test.heap.mb": "-1"}, None)])
def test_invalid_legacy_values(config: dict[str, str], env: str | None) -> None:
    with pytest.raises(InvalidOptionValue) as caught:
        read_legacy_heap(config, OPTIONS, env)
    assert caught.value.rule is Rule.LEGACY_HEAP_INVALID
    assert TARGET.key in caught.value.fix


def test_mapping_only_when_the_target_is_unset() -> None:
    notices: list[Notice] = []
    assert map_legacy_heap({"test.heap.size": "1g", TARGET.key: "2g"}, OPTIONS, None, TARGET, notices) == {
        "test.heap.size": "1g",
        TARGET.key: "2g",
    }
    mapped = map_legacy_heap({"test.heap.size": "bad"} | {TARGET.key: "2g"}, OPTIONS, None, TARGET, notices)
    assert mapped[TARGET.key] == "2g"  # an unreadable legacy value is never read then
    mapped = map_legacy_heap({"test.heap.size": "1g"}, OPTIONS, None, TARGET, notices)
    assert mapped[TARGET.key] == 1 << 30
    assert [n.code for n in notices] == ["legacy-heap-mapped"]
