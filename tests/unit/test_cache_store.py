"""The store: total bytes never above the bound, least recently used out first; Builder limits."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.cache import Cache, CacheConfig, Freshness, LookupKind
from shieldwall.cache.entry import ENTRY_OVERHEAD, Builder, Entry
from shieldwall.cache.store import Store
from shieldwall.http1.request import validate_request_head

FRESH = Freshness(lifetime=60, stale_while_revalidate=0, stale_if_error=0, initial_age=0, vary=())
MAX = 20_000


def entry(name: int, size: int) -> Entry:
    key = (b"k%d" % name, ())
    return Entry(key, 200, fields=(), head_fields=b"", body=b"x" * size, freshness=FRESH, stored_at=0.0)


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["put", "touch"]), st.integers(0, 15), st.integers(0, 6000)), max_size=120
    )
)
def test_bytes_stay_within_the_bound_and_the_least_recently_used_go_first(
    ops: list[tuple[str, int, int]],
) -> None:
    store = Store(MAX)
    model: OrderedDict[bytes, int] = OrderedDict()  # key -> size, least recently used first
    evictions = 0
    for op, name, size in ops:
        key = b"k%d" % name
        if op == "put":
            new = entry(name, size)
            model.pop(key, None)
            model[key] = new.size
            store.put(new)
            while sum(model.values()) > MAX:
                model.popitem(last=False)
                evictions += 1
        elif key in model:
            stored = store.get((key, ()))
            assert stored is not None
            store.touch(stored)
            model.move_to_end(key)
        assert store.bytes <= MAX
        assert store.bytes == sum(model.values())
        assert {k for k in (b"k%d" % n for n in range(16)) if store.get((k, ())) is not None} == set(model)
    assert store.evictions == evictions


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 3000), max_size=60))
def test_through_the_cache_the_bound_holds_and_big_bodies_are_never_stored(sizes: list[int]) -> None:
    cache = Cache[int](CacheConfig(max_bytes=10_000, max_object_bytes=2_500))
    for index, size in enumerate(sizes):
        head = validate_request_head(b"GET", b"/o%d" % index, b"1.1", [(b"Host", b"h")])
        lookup = cache.lookup(head, b"http", 1000.0, index)
        assert lookup.kind is LookupKind.MISS and lookup.flight is not None
        builder = cache.begin(lookup.flight, 200, [(b"Cache-Control", b"max-age=9")], 1000.0)
        assert builder is not None
        fits = builder.feed(b"y" * size)
        outcome = cache.finish(lookup.flight, builder, 1000.0)
        assert (outcome.entry is not None) is fits
        assert fits is (outcome.entry is not None and outcome.entry.size <= 2_500)
        assert cache.bytes_stored <= 10_000


def test_entry_size_counts_body_fields_key_and_overhead() -> None:
    built = Entry(
        (b"key", ()),
        200,
        fields=((b"A", b"b"),),
        head_fields=b"A: b\r\n",
        body=b"12345",
        freshness=FRESH,
        stored_at=0,
    )
    assert built.size == 5 + 6 + 3 + ENTRY_OVERHEAD


def test_builder_counts_what_the_entry_will_and_stops_at_the_limit() -> None:
    builder = Builder(200, ((b"A", b"b"),), FRESH, received_at=0.0, base_size=100, limit=120)
    assert builder.size == 106
    assert builder.feed(b"x" * 14) and builder.size == 120  # exactly at the limit is fine
    assert not builder.feed(b"x") and builder.too_big
    assert builder.body() == b""  # what was collected is dropped at once


@pytest.mark.parametrize(
    "bad",
    [
        {"max_bytes": 1000, "max_object_bytes": 2000},
        {"max_object_bytes": 0},
        {"stale_if_error": -1.0},
        {"coalesce_timeout": 0.0},
        {"max_followers": -1},
    ],
)
def test_impossible_configurations_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CacheConfig(**bad)
