"""Vector clocks obey the partial-order laws; delta encoding is lossless."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgetrace import Order, VectorClock
from edgetrace._vclock import apply_delta, delta

NODES = ["a", "b", "c", "d"]
clocks = st.dictionaries(st.sampled_from(NODES), st.integers(0, 6)).map(VectorClock)


@given(clocks, clocks)
def test_merge_is_commutative(x, y):
    assert x.merge(y) == y.merge(x)


@given(clocks, clocks, clocks)
def test_merge_is_associative(x, y, z):
    assert x.merge(y).merge(z) == x.merge(y.merge(z))


@given(clocks)
def test_merge_is_idempotent(x):
    assert x.merge(x) == x


@given(clocks, clocks, clocks)
def test_merge_is_least_upper_bound(x, y, z):
    m = x.merge(y)
    assert x <= m and y <= m
    if x <= z and y <= z:
        assert m <= z


@given(clocks, clocks)
def test_compare_is_antisymmetric_and_consistent(x, y):
    order = x.compare(y)
    inverse = {Order.BEFORE: Order.AFTER, Order.AFTER: Order.BEFORE,
               Order.EQUAL: Order.EQUAL, Order.CONCURRENT: Order.CONCURRENT}
    assert y.compare(x) is inverse[order]
    assert (order is Order.BEFORE) == x.happens_before(y)
    assert (order is Order.EQUAL) == (x == y)


@given(clocks, clocks, clocks)
def test_happens_before_is_transitive(x, y, z):
    if x.happens_before(y) and y.happens_before(z):
        assert x.happens_before(z)


@given(clocks, st.sampled_from(NODES))
def test_tick_moves_strictly_forward(x, node):
    assert x.happens_before(x.tick(node))


@given(st.lists(st.tuples(st.sampled_from(["tick", "recv"]), clocks), max_size=30))
def test_delta_roundtrip_on_a_node_stream(events):
    own = "a"
    clock = VectorClock()
    emitted = VectorClock()
    rebuilt = VectorClock()
    for op, other in events:
        if op == "recv":
            clock = clock.merge({k: v for k, v in other.items() if k != own})
        clock = clock.tick(own)
        d = delta(emitted, clock, own=own)
        assert own not in d
        emitted = clock
        rebuilt = apply_delta(rebuilt, d, own=own, seq=clock[own])
        assert rebuilt == clock


def test_local_event_delta_is_empty():
    c1 = VectorClock({"a": 1, "b": 3})
    assert delta(c1, c1.tick("a"), own="a") == {}


def test_parse_and_str_roundtrip():
    c = VectorClock({"tractor-01": 4, "hub": 2})
    assert VectorClock.parse(str(c)) == c
    with pytest.raises(ValueError, match="NODE=COUNT"):
        VectorClock.parse("x=y")
