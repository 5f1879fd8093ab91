"""Per-node clock offsets estimated from message pairs: one time axis for a whole session.

Every span's times are local nanoseconds on its node's clock, and node clocks disagree (a
tractor's clock 2 s behind the hub's is ordinary on an edge grid). A message gives evidence:
it left node A at A's local time `dep` and arrived at node B at B's local time `arr`, so

    arr - dep = delay + (theta_B - theta_A)            (theta: how far a clock runs ahead)

with delay >= 0. The minimum of `arr - dep` over the messages of a direction is the best
bound that direction gives: `-min_BA <= theta_B - theta_A <= min_AB`. When 0 is inside
those bounds the clocks already agree with every message and are left alone (any offset
within half the least round trip, `uncertainty`, would be a guess). Otherwise, with
messages both ways (request and reply: the usual case), the NTP estimate
`theta_B - theta_A = (min_AB - min_BA) / 2` holds whatever the delays, give or take that
uncertainty, and keeps both minimum delays at or above zero on the common axis. One
direction only bounds the difference; the estimate then moves a clock only as far as
needed for the fastest message not to arrive before it left. Offsets are chained from a reference node (the best-connected one) over the most
certain links; nodes that exchanged no message keep offset 0.

Shown by the explorer (recorded → shipped → stored → replayed → **shown**); pure Python, no
I/O, so replay reports or `show` can use it too.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["ClockOffsets", "LinkEvidence", "estimate_offsets"]


@dataclass(frozen=True)
class LinkEvidence:
    """What the messages of one direction say: how many, and the least `arr - dep` (ns)."""

    src: str
    dst: str
    count: int
    min_delay_ns: int


@dataclass(frozen=True)
class ClockOffsets:
    """ns to add to each node's local times to place them on the common axis."""

    offsets: dict[str, int] = field(default_factory=dict)
    reference: str = ""
    #: ± ns of each estimate (half the least round trip on the link it came from); None: a
    #: one-way bound only, or no evidence at all.
    uncertainty: dict[str, int | None] = field(default_factory=dict)
    #: How each node's offset was found, in words (for the fleet view and the detail).
    method: dict[str, str] = field(default_factory=dict)

    def of(self, node: str) -> int:
        return self.offsets.get(node, 0)

    def describe(self, node: str) -> str:
        off = self.offsets.get(node, 0)
        unc = self.uncertainty.get(node)
        sign = "+" if off >= 0 else "-"
        text = f"{sign}{_ms(abs(off))}" if off else "0"
        if unc is not None and node != self.reference:
            text += f" ±{_ms(unc)}"
        return text


def _ms(ns: int) -> str:
    if ns < 1_000_000:
        return f"{ns / 1e3:.0f}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f}ms"
    return f"{ns / 1e9:.3f}s"


def _push(heap: list[tuple[int, int, str, str, int, int | None, str]], node: str,
          neighbours: dict[str, list[tuple[str, int, int | None, str]]], placed: dict[str, int]) -> None:
    """Offer node's links to the tree: round trips before one-way links, the most certain first."""
    for peer, d, unc, how in neighbours.get(node, []):
        if peer not in placed:
            cost = unc if unc is not None else 1 << 62
            heapq.heappush(heap, (0 if unc is not None else 1, cost, peer, node, d, unc, how))


def estimate_offsets(links: Iterable[LinkEvidence], nodes: Iterable[str] = ()) -> ClockOffsets:
    """Offsets for every node named in `nodes` or in a link, relative to a reference node."""
    by_dir: dict[tuple[str, str], LinkEvidence] = {}
    weight: dict[str, int] = {n: 0 for n in nodes}
    for ev in links:
        if ev.src == ev.dst or ev.count <= 0:
            continue
        key = (ev.src, ev.dst)
        old = by_dir.get(key)
        if old is not None:  # the same direction twice: merge
            ev = LinkEvidence(ev.src, ev.dst, old.count + ev.count, min(old.min_delay_ns, ev.min_delay_ns))
        by_dir[key] = ev
        weight[ev.src] = weight.get(ev.src, 0) + ev.count
        weight[ev.dst] = weight.get(ev.dst, 0) + ev.count
    if not weight:
        return ClockOffsets()
    # each unordered pair: (estimate of theta_b - theta_a, uncertainty or None, how)
    pair: dict[tuple[str, str], tuple[int, int | None, str]] = {}
    unc: int | None
    for (a, b), ab in by_dir.items():
        if (b, a) in pair or (a, b) in pair:
            continue
        ba = by_dir.get((b, a))
        if ba is not None:
            unc = max(0, (ab.min_delay_ns + ba.min_delay_ns) // 2)
            if -ba.min_delay_ns <= 0 <= ab.min_delay_ns:  # the clocks already agree with every message
                d, how = 0, f"agrees with {{peer}} within the round trip ({ab.count + ba.count} messages)"
            else:
                d = (ab.min_delay_ns - ba.min_delay_ns) // 2
                how = f"round trips with {{peer}} ({ab.count + ba.count} messages)"
            pair[(a, b)] = (d, unc, how)
        else:
            pair[(a, b)] = (min(0, ab.min_delay_ns), None, f"one-way messages with {{peer}} ({ab.count})")
    neighbours: dict[str, list[tuple[str, int, int | None, str]]] = {}
    for (a, b), (d, unc, how) in pair.items():
        neighbours.setdefault(a, []).append((b, d, unc, how))
        neighbours.setdefault(b, []).append((a, -d, unc, how))
    theta: dict[str, int] = {}
    uncertainty: dict[str, int | None] = {}
    method: dict[str, str] = {}
    reference = ""
    # one tree per connected group of nodes, rooted at its best-connected node; links with a
    # round trip first, the most certain first (Prim's algorithm)
    for root in sorted(weight, key=lambda n: (-weight[n], n)):
        if root in theta:
            continue
        if not reference:
            reference = root
        theta[root] = 0
        uncertainty[root] = 0 if root == reference else None
        if root == reference:
            method[root] = "reference clock"
        else:
            method[root] = "no messages" if root not in neighbours else "no messages with the reference's nodes"
        heap: list[tuple[int, int, str, str, int, int | None, str]] = []
        _push(heap, root, neighbours, theta)
        while heap:
            _one_way, _cost, node, via, d, link_unc, how = heapq.heappop(heap)
            if node in theta:
                continue
            theta[node] = theta[via] + d
            base = uncertainty.get(via)
            uncertainty[node] = None if link_unc is None or base is None else base + link_unc
            method[node] = how.format(peer=via)
            _push(heap, node, neighbours, theta)
    offsets = {n: -t for n, t in theta.items()}
    return ClockOffsets(offsets=offsets, reference=reference, uncertainty=uncertainty, method=method)
