"""One duration grammar for faults, profiles, invariants and explorer queries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgetrace._units import format_duration, parse_duration


@pytest.mark.parametrize(("text", "ns"), [("2s", 2_000_000_000), ("150ms", 150_000_000), ("500us", 500_000),
                                          ("500µs", 500_000), ("1.5m", 90_000_000_000), ("2h", 7_200_000_000_000),
                                          ("7ns", 7), (" 3 ms ", 3_000_000)])
def test_units(text, ns):
    assert parse_duration(text) == ns


def test_bare_numbers_mean_what_the_caller_says():
    assert parse_duration(0.5, bare="s") == 500_000_000
    assert parse_duration("500", bare="ns", bare_text=True) == 500
    with pytest.raises(ValueError, match="no unit"):
        parse_duration("500", bare="s")  # text in a file must say its unit
    with pytest.raises(ValueError, match="no unit"):
        parse_duration(2)


@pytest.mark.parametrize("bad", ["2 parsecs", "", "s", "-", True, None, float("nan"), "1e400s"])
def test_bad_values_are_value_errors(bad):
    with pytest.raises(ValueError):
        parse_duration(bad, bare="s")


def test_sign():
    with pytest.raises(ValueError, match="negative"):
        parse_duration("-2s")
    assert parse_duration("-2s", signed=True) == -2_000_000_000


@given(st.integers(min_value=-(1 << 62), max_value=1 << 62))
def test_format_round_trips(ns):
    assert parse_duration(format_duration(ns), signed=True) == ns


def test_every_consumer_takes_every_unit():
    from edgetrace.agents._grid import LinkProfile
    from edgetrace.replay._invariants import parse_invariant
    from edgetrace.replay.faults import FaultPlan
    from edgetrace.tui._query import parse_duration as query_duration

    assert LinkProfile.from_mapping({"latency": "1h"}).latency_min == 3_600_000_000_000
    assert FaultPlan.parse(["latency(delay=1h)"]).specs() == ["latency(delay=1h)"]
    assert parse_invariant("never act where duration > 5µs")
    assert query_duration("2h") == 7_200_000_000_000
