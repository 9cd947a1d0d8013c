"""Java HashMap/HashSet iteration order, checked against orders printed by real Flink (notes section 9.2)."""

from __future__ import annotations

from flinkmem.engine import javamap
from flinkmem.engine.javamap import hash_set_order, hashmap_order, java_string_hash

TM_KEYS = [
    "taskmanager.cpu.cores",
    "taskmanager.memory.framework.heap.size",
    "taskmanager.memory.framework.off-heap.size",
    "taskmanager.memory.task.heap.size",
    "taskmanager.memory.task.off-heap.size",
    "taskmanager.memory.network.min",
    "taskmanager.memory.network.max",
    "taskmanager.memory.managed.size",
    "taskmanager.memory.jvm-metaspace.size",
    "taskmanager.memory.jvm-overhead.min",
    "taskmanager.memory.jvm-overhead.max",
    "taskmanager.numberOfTaskSlots",
    "external-resources",
]


def test_string_hash_matches_java() -> None:
    # "gpu".hashCode() == 102572 and "".hashCode() == 0; a supplementary character counts as two units.
    assert java_string_hash("gpu") == 102572
    assert java_string_hash("") == 0
    assert java_string_hash("\U0001f600") == (31 * 0xD83D + 0xDE00) & 0xFFFFFFFF
    # Integer overflow wraps: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
    assert java_string_hash("polygenelubricants") == 0x80000000


def test_thirteen_dynamic_configs_in_flinks_order() -> None:
    assert hashmap_order(TM_KEYS) == [
        "taskmanager.memory.network.min",
        "taskmanager.cpu.cores",
        "taskmanager.memory.task.off-heap.size",
        "taskmanager.memory.jvm-metaspace.size",
        "external-resources",
        "taskmanager.memory.jvm-overhead.min",
        "taskmanager.memory.framework.off-heap.size",
        "taskmanager.memory.network.max",
        "taskmanager.memory.framework.heap.size",
        "taskmanager.memory.managed.size",
        "taskmanager.memory.task.heap.size",
        "taskmanager.numberOfTaskSlots",
        "taskmanager.memory.jvm-overhead.max",
    ]


def test_amount_keys_land_where_flink_prints_them() -> None:
    order = hashmap_order([*TM_KEYS, "external-resource.gpu.amount", "external-resource.fpga.amount"])
    assert order[-1] == "external-resource.gpu.amount"
    assert order[order.index("taskmanager.memory.network.max") + 1] == "external-resource.fpga.amount"


def test_hash_set_drops_duplicates_and_orders_by_bucket() -> None:
    assert hash_set_order(["gpu", "fpga", "gpu"]) == ["fpga", "gpu"]
    assert hash_set_order([]) == []


def test_equal_buckets_keep_insertion_order() -> None:
    # "Aa" and "BB" share a hash code, so they share a bucket at every table size.
    assert java_string_hash("Aa") == java_string_hash("BB")
    assert hashmap_order(["BB", "Aa"]) == ["BB", "Aa"]
    assert hashmap_order(["Aa", "BB"]) == ["Aa", "BB"]


def test_hash_of_long_keys_is_javas_and_not_cached() -> None:
    # Printed by Java 17: Integer.toUnsignedString("gpu".repeat(5000).hashCode()), and the same for
    # "\uD83D\uDE00x\uD800".repeat(1000) (a surrogate pair, then a lone surrogate).
    before = javamap._cached_hash.cache_info().currsize
    assert java_string_hash("gpu" * 5000) == 1029136896
    assert java_string_hash("\U0001f600x\ud800" * 1000) == 2103717368
    assert javamap._cached_hash.cache_info().currsize == before
