"""Step keys: the causal position of a step, how a replay finds its recorded counterpart.

A key is (trace, node, kind, name, occurrence): the 3rd `state.put events/tractor-01` of trace
`tractor-01/f0002` on `tractor-01`. The node runtime numbers steps as it runs them; the
replayer numbers a recorded session's spans the same way, offline. Both go through
`StepCounter`, so the two numberings cannot drift apart: a replayed step lines up with its
recorded twin without looking at any timestamp.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from edgetrace._records import Span, SpanKind
from edgetrace._snapshot import is_snapshot

__all__ = ["StepCounter", "StepKey", "is_step", "step_keys"]

StepKey = tuple[str, str, str, str, int]  # (trace, node, kind, name, occurrence)


_TEXT: dict[str, str] = {k: k.value for k in SpanKind}


class StepCounter:
    """Numbers the steps of one node per (trace, kind, name), in the order they are taken."""

    __slots__ = ("_seen", "node")

    def __init__(self, node: str) -> None:
        self.node = node
        self._seen: Counter[tuple[str, str, str]] = Counter()

    def next(self, trace: str, kind: SpanKind | str, name: str) -> StepKey:
        kind_text = _TEXT.get(kind, kind)  # a plain str, whichever was given (a StrEnum hashes as its value)
        slot = (trace, kind_text, name)
        n = self._seen.get(slot, 0) + 1
        self._seen[slot] = n
        return (trace, self.node, kind_text, name, n)

    def counts(self) -> dict[tuple[str, str, str], int]:
        """How many steps of each (trace, kind, name) were taken so far."""
        return dict(self._seen)

    def resume(self, counts: dict[tuple[str, str, str], int]) -> None:
        """Continue a numbering from a snapshot's place in the stream (a replay from a cut)."""
        self._seen = Counter(counts)

    def restart(self) -> None:
        """A restarted node counts its steps from the beginning (a new process does)."""
        self._seen.clear()


def is_step(span: Span) -> bool:
    """Whether a record is a step of the app: fault records and state snapshots are not."""
    return span.kind is not SpanKind.FAULT and not is_snapshot(span)


def step_keys(spans: Iterable[Span]) -> dict[str, StepKey]:
    """The key of every recorded step, by span ref: per node in seq order; faults and snapshots
    are not steps."""
    keys: dict[str, StepKey] = {}
    counters: dict[str, StepCounter] = {}
    for span in sorted(spans, key=lambda s: (s.node, s.seq)):
        if not is_step(span):
            continue
        counter = counters.get(span.node)
        if counter is None:
            counter = counters[span.node] = StepCounter(span.node)
        keys[span.ref] = counter.next(span.trace, span.kind, span.name)
    return keys
