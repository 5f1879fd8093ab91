"""Invariants for distributed properties: exclusion, deadlines along causal chains, coverage.

- `NotConcurrent` ``never concurrent A with B on same FIELD``  no two such steps unordered by
  happens-before (two drones treating one row at once; two writers of one key)
- `Within`        ``every A within 1s after B``               each A comes at most 1 s after the
  latest B in its causal past (a rule timeout written as a property)
- `Coverage`      ``sometimes A`` / ``reachable A`` / ``unreachable A``  Antithesis-style: the first
  two are reported as reached or not (never a violation of one run: a sweep aggregates them),
  `unreachable A` is violated by any A

Pairwise violations name both steps (`Violation.other`), so a report can show both sides.
"""

from __future__ import annotations

from itertools import combinations

from edgetrace._records import Span
from edgetrace._units import format_duration
from edgetrace.replay._invariants._model import Cond, History, Invariant, Selector, Violation

__all__ = ["Coverage", "NotConcurrent", "Within"]


class NotConcurrent(Invariant):
    """No `first` and `second` step with a matching key that neither happened before the other."""

    def __init__(self, name: str, first: Selector, second: Selector, key: Cond | None, key_text: str,
                 description: str = "") -> None:
        self.name, self.first, self.second, self.key, self.key_text = name, first, second, key, key_text
        on = f" on {key_text}" if key_text else ""
        self.description = description or f"never concurrent {first} with {second}{on}"

    def check(self, history: History) -> list[Violation]:
        firsts = [s for s in history.spans if self.first.matches(s)]
        seconds = firsts if self.second is self.first or str(self.second) == str(self.first) \
            else [s for s in history.spans if self.second.matches(s)]
        index = history.index
        found = []
        pairs = combinations(firsts, 2) if seconds is firsts else ((a, b) for a in firsts for b in seconds)
        for a, b in pairs:
            if a.ref == b.ref or (self.key is not None and not self.key(b, a)):
                continue
            if index.happens_before(a, b) or index.happens_before(b, a):
                continue
            early, late = sorted((a, b), key=lambda s: (index.clock_sum(s), s.node, s.seq))
            found.append(Violation(
                self.name, late.ref, late.trace, late.node,
                f"{late.kind.value} {late.name} at {late.ref} and {early.kind.value} {early.name} at {early.ref} "
                f"are concurrent{f' ({self.key_text})' if self.key_text else ''}: neither could have known "
                "of the other",
                tuple(s.ref for s in history.chain(late)), other=early.ref))
        return found


class Within(Invariant):
    """Every `target` at most `limit_ns` after the latest `origin` in its causal past (same trace)."""

    def __init__(self, name: str, target: Selector, limit_ns: int, origin: Selector, description: str = "") -> None:
        self.name, self.target, self.limit_ns, self.origin = name, target, limit_ns, origin
        self.description = description or f"every {target} within {format_duration(limit_ns)} after {origin}"

    def check(self, history: History) -> list[Violation]:
        found = []
        for span in history.spans:
            if not self.target.matches(span):
                continue
            past = [p for p in history.index.causal_past(span, trace=span.trace) if self.origin.matches(p)]
            if not past:
                continue  # nothing to measure from: `every A after B` is the property for that
            origin = past[-1]
            took = _elapsed(origin, span)
            if took > self.limit_ns:
                found.append(self.violation(
                    history, span,
                    f"{span.kind.value} {span.name} at {span.ref} came {format_duration(took)} after "
                    f"{origin.kind.value} {origin.name} {origin.ref}, over the {format_duration(self.limit_ns)} "
                    f"allowed"))
        return found


def _elapsed(a: Span, b: Span) -> int:
    """Time from `a` to `b` on the node clocks (exact on one node; across nodes, skew counts)."""
    return max(0, b.start - a.start)


class Coverage(Invariant):
    """`sometimes`/`reachable` (reported, reached or not) and `unreachable` (violated when reached)."""

    def __init__(self, name: str, mode: str, target: Selector, description: str = "") -> None:
        self.name, self.mode, self.target = name, mode, target
        self.description = description or f"{mode} {target}"
        self.reached = 0

    def check(self, history: History) -> list[Violation]:
        hits = [s for s in history.spans if self.target.matches(s)]
        self.reached = len(hits)
        if self.mode != "unreachable":
            return []
        return [self.violation(history, s, f"{s.kind.value} {s.name} at {s.ref} was reached: `unreachable "
                                           f"{self.target}`") for s in hits]
