"""Clock offsets from message pairs: skew recovered from round trips, causality kept."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrace._clock_offsets import LinkEvidence, estimate_offsets


def _evidence(skew: dict[str, int], delays: dict[tuple[str, str], list[int]]) -> list[LinkEvidence]:
    """What messages with these true delays look like on clocks running `skew` ns ahead."""
    return [LinkEvidence(a, b, len(ds), min(ds) + skew[b] - skew[a]) for (a, b), ds in delays.items()]


def test_round_trips_recover_a_skew():
    skew = {"hub": 0, "t-1": -2_000_000_000, "t-2": 1_500_000_000}
    delays = {("t-1", "hub"): [10_000_000, 12_000_000], ("hub", "t-1"): [10_000_000],
              ("t-2", "hub"): [30_000_000], ("hub", "t-2"): [20_000_000]}
    clock = estimate_offsets(_evidence(skew, delays))
    assert clock.reference == "hub"
    assert clock.offsets["t-1"] == 2_000_000_000  # symmetric delays: exact
    assert abs(clock.offsets["t-2"] - (-1_500_000_000)) <= 5_000_000  # half the asymmetry
    assert clock.uncertainty["t-2"] == 25_000_000
    assert "round trips with hub" in clock.method["t-2"]
    assert clock.describe("t-1").startswith("+2.000s ±")


def test_clocks_that_agree_are_left_alone():
    delays = {("a", "b"): [5_000_000], ("b", "a"): [9_000_000]}
    clock = estimate_offsets(_evidence({"a": 0, "b": 1_000_000}, delays), ["a", "b", "lonely"])
    assert clock.offsets == {"a": 0, "b": 0, "lonely": 0}
    assert "agrees with" in clock.method["b"] and clock.method["lonely"] == "no messages"


def test_one_way_messages_move_a_clock_only_as_far_as_needed():
    clock = estimate_offsets([LinkEvidence("a", "b", 3, -400)] * 2 + [LinkEvidence("a", "c", 1, 700)])
    off = clock.offsets
    assert off["b"] - off["a"] == 400 and off["c"] == off["a"]
    assert clock.uncertainty["b"] is None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 6))
def test_no_message_arrives_before_it_left_on_a_tree(seed, n):
    """On a star of round trips (a hub and its tractors), every message's delay on the
    common axis is at least zero, whatever the skews and delays."""
    rng = random.Random(seed)
    nodes = ["hub"] + [f"t-{i}" for i in range(1, n)]
    skew = {x: rng.randrange(-5 * 10**9, 5 * 10**9) for x in nodes}
    delays = {}
    for t in nodes[1:]:
        delays[(t, "hub")] = [rng.randrange(0, 10**9) for _ in range(rng.randrange(1, 4))]
        delays[("hub", t)] = [rng.randrange(0, 10**9) for _ in range(rng.randrange(1, 4))]
    clock = estimate_offsets(_evidence(skew, delays))
    for (a, b), ds in delays.items():
        for d in ds:
            arrive = d + skew[b] + clock.offsets[b]
            left = skew[a] + clock.offsets[a]
            assert arrive >= left, (a, b)
