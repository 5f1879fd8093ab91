"""Races found by clocks and confirmed by replay.

Two nodes race on a state key when they access it — at least one of them writing — and neither
access happened before the other (by vector clock): the state host served them in *an* order,
and nothing in the app made it *that* order. Such pairs are listed from the run's causal index
(like Raceway). Listing is not knowing: `confirm` replays the same session with the two served
the other way round — holding the first one's request until the second has been served — and
compares what was decided and done, and which invariants broke. A race whose other order
changes nothing is benign; one that flips a decision is the bug.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind
from edgetrace._stepkey import StepKey
from edgetrace.replay.faults import FaultInjector, MessageFacts, NodeEvent
from edgetrace.replay.faults._steps import ModelFaultEffect

__all__ = ["HoldInjector", "Race", "find_races"]

_STATE = (SpanKind.STATE_GET, SpanKind.STATE_PUT)


@dataclass
class Race:
    """Two accesses of `key` from two nodes, served first/second, unordered by happens-before."""

    key: str
    first: Span  # the access served first (its request, or the op itself on the host)
    second: Span
    first_served: Span
    second_served: Span
    confirmed: str = ""  # what changes in the other order ('' not confirmed yet)
    changes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        writes = sum(1 for s in (self.first, self.second) if s.kind is SpanKind.STATE_PUT)
        return "write/write" if writes == 2 else "write/read"

    def describe(self) -> str:
        return (f"{self.kind} race on {self.key!r}: {self.first.kind.value} by {self.first.node} ({self.first.ref}) "
                f"and {self.second.kind.value} by {self.second.node} ({self.second.ref}) are concurrent; "
                f"{self.first_served.node} served {self.first.node}'s first")

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "first": self.first.ref, "second": self.second.ref,
                "first_served": self.first_served.ref, "second_served": self.second_served.ref,
                "description": self.describe(), "confirmed": self.confirmed, "changes": self.changes}


def find_races(spans: Iterable[Span], index: CausalIndex, *, limit: int = 50) -> list[Race]:
    """Concurrent accesses of one key by two nodes, adjacent in the state host's serving order."""
    spans = list(spans)
    by_ref = {s.ref: s for s in spans}
    served: dict[tuple[str, str], list[Span]] = {}
    for s in spans:  # what the state host did: served requests, and its own handlers' local ops
        if s.kind in _STATE and not s.error and (s.cause or attr.TO not in s.attrs):
            served.setdefault((s.node, s.name), []).append(s)
    found: list[Race] = []
    for (_host, key), ops in sorted(served.items()):
        ops.sort(key=lambda s: s.seq)
        for a, b in itertools.pairwise(ops):
            ra, rb = _request(a, by_ref), _request(b, by_ref)
            if ra is None or rb is None or ra.node == rb.node:
                continue
            if SpanKind.STATE_PUT not in (ra.kind, rb.kind):
                continue
            if index.happens_before(ra, rb) or index.happens_before(rb, ra):
                continue
            found.append(Race(key, ra, rb, a, b))
            if len(found) >= limit:
                return found
    return found


def _request(op: Span, by_ref: dict[str, Span]) -> Span | None:
    """The access behind a served op: the client's request, or the op itself when local."""
    if not op.cause:
        return op if op.trace else None
    return by_ref.get(op.cause)


class HoldInjector(FaultInjector):
    """Another injector's answers, plus extra delay for chosen messages (by the step that sent them)."""

    def __init__(self, base: FaultInjector, holds: dict[StepKey, int]) -> None:
        self.base = base
        self.holds = holds

    def message(self, msg: MessageFacts) -> list[int]:
        delays = self.base.message(msg)
        extra = self.holds.get(msg.step) if msg.step is not None else None
        return [d + extra for d in delays] if extra else delays

    def local_time(self, node: str, true_ns: int) -> int:
        return self.base.local_time(node, true_ns)

    def node_events(self, nodes: list[str]) -> list[NodeEvent]:
        return self.base.node_events(nodes)

    def happened(self, event: NodeEvent) -> None:
        self.base.happened(event)

    def counts(self) -> list[tuple[str, int]]:
        return self.base.counts()

    def model(self, node: str, model: str, at: int, step: Any = None) -> ModelFaultEffect | None:
        return self.base.model(node, model, at, step)

    def rule_timeout(self, node: str, policy: str, at: int, step: Any = None) -> Any:
        return self.base.rule_timeout(node, policy, at, step)

    def state_refusal(self, node: str, op: str, key: str, at: int, step: Any = None) -> Any:
        return self.base.state_refusal(node, op, key, at, step)


def outcome_changes(before: list[Span], after: list[Span]) -> list[str]:
    """What was decided or done differently, step by step, in words (decisions and acts only)."""
    def outcomes(spans: list[Span]) -> dict[tuple[str, str, str, int], str]:
        found: dict[tuple[str, str, str, int], str] = {}
        seen: dict[tuple[str, str, str], int] = {}
        for s in sorted(spans, key=lambda s: (s.node, s.seq)):
            if s.kind is SpanKind.DECIDE:
                value = f"decides {s.attrs.get(attr.DECISION)!r}"
            elif s.kind is SpanKind.ACT:
                value = f"does {s.name} {s.attrs.get(attr.ACT_ARGS)}"
            else:
                continue
            slot = (s.trace, s.node, s.name)
            seen[slot] = seen.get(slot, 0) + 1
            found[(*slot, seen[slot])] = value
        return found

    a, b = outcomes(before), outcomes(after)
    changes = []
    for slot in sorted(set(a) | set(b)):
        trace, node, name, _n = slot
        if a.get(slot) != b.get(slot):
            was, now = a.get(slot, "nothing"), b.get(slot, "nothing")
            changes.append(f"{name} on {node} (trace {trace}): {now} instead of {was}")
    return changes


def confirm(races: list[Race], replay: Callable[[dict[StepKey, int]], list[Span]], keys: dict[str, StepKey],
            baseline: list[Span], *, limit: int = 10,
            violated: Callable[[list[Span]], dict[str, int]] = lambda spans: {}) -> None:
    """Replay each race the other way round (via `replay(holds)`) and record what changes:
    decisions, acts, and the number of violations of each invariant (`violated(spans)`)."""
    before = violated(baseline)
    for race in races[:limit]:
        key = keys.get(race.first.ref)
        if key is None or race.first.ref == race.first_served.ref:
            race.confirmed = "not confirmed: the first access was local to the state host (nothing to hold)"
            continue
        hold = max(1, race.second_served.start - race.first_served.start + 1_000_000)
        after = replay({key: hold})
        race.changes = outcome_changes(baseline, after)
        now = violated(after)
        race.changes += [f"invariant {name}: {now.get(name, 0)} violation(s) instead of {before.get(name, 0)}"
                         for name in sorted(set(before) | set(now)) if now.get(name, 0) != before.get(name, 0)]
        race.confirmed = ("confirmed: the other order changes what is decided or done" if race.changes
                          else "benign: the other order changes no decision and no act")
