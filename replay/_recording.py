"""What the replayer takes from a recording: inputs, step durations, message delays.

Steps are addressed by causal position — (trace, node, kind, name, occurrence) — computed
the same way the node runtime computes it while running, so a replayed step finds its
recorded counterpart without looking at timestamps.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._codec import decode_any
from edgetrace._records import Span, SpanKind
from edgetrace._session import Session
from edgetrace._snapshot import is_snapshot
from edgetrace._stepkey import StepKey, is_step, step_keys

__all__ = ["RecordedInput", "Recording", "arrival", "departure"]

@dataclass(frozen=True)
class RecordedInput:
    at: int
    node: str
    topic: str
    trace: str
    payload: Any


def arrival(span: Span) -> int:
    # A reply's receive span starts when the request left; it ends when the reply arrived.
    if span.kind is SpanKind.RECV and span.name.endswith(":reply") and not span.attrs.get(attr.LATE):
        return span.end
    return span.start


def departure(span: Span) -> int:
    return span.end if span.kind in (SpanKind.STATE_GET, SpanKind.STATE_PUT) and span.cause else span.start


class Recording:
    """Indexes a recorded session for the simulator."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.spans = list(session.spans)
        self.keys = step_keys(self.spans)
        self.by_key: dict[StepKey, Span] = {k: session.get(ref) for ref, k in self.keys.items()}  # type: ignore[misc]
        deliveries: dict[str, Span] = {}
        for span in self.spans:
            if span.cause and span.cause not in deliveries:
                deliveries[span.cause] = span
        self.delays: dict[StepKey, int | None] = {}
        link_delays: dict[tuple[str, str], list[int]] = defaultdict(list)
        for span in self.spans:
            if not _sends(span):
                continue
            key = self.keys.get(span.ref)
            if key is None:
                continue
            delivered = deliveries.get(span.ref)
            if delivered is None:
                self.delays[key] = None  # lost in the recording: lose it again
                continue
            delay = max(0, arrival(delivered) - departure(span))
            self.delays[key] = delay
            link_delays[(span.node, delivered.node)].append(delay)
        self.link_median = {link: int(statistics.median(v)) for link, v in sorted(link_delays.items())}
        durations: dict[tuple[str, str], list[int]] = defaultdict(list)
        for span in self.spans:
            if span.kind in (SpanKind.INFER, SpanKind.DECIDE):
                durations[(span.kind.value, span.name)].append(span.duration)
        self.median_duration = {k: int(statistics.median(v)) for k, v in sorted(durations.items())}
        self.end = max((max(s.start, s.end) for s in self.spans), default=0)
        self._input_blobs: dict[str, bytes] = {}
        # records that are not steps, by node and seq — fault records of a simulated recording
        # and state snapshots: written back as records at their place, so a replay's span refs
        # stay the recording's (they are history, not faults to inject or state to take again)
        self.history_records: dict[str, dict[int, Span]] = defaultdict(dict)
        self.snapshots: dict[str, list[Span]] = defaultdict(list)  # per node, in seq order
        for span in self.spans:
            if not is_step(span):
                self.history_records[span.node][span.seq] = span
                if is_snapshot(span):
                    self.snapshots[span.node].append(span)
        for found in self.snapshots.values():
            found.sort(key=lambda s: s.seq)

    def inputs(self, after: Mapping[str, int] | None = None) -> list[RecordedInput]:
        """The recorded inputs, decoded afresh on every call (a handler may change its payload;
        the next replay must not see that), their bytes read from the session once; with
        `after` (node → seq, a cut), only those that came later."""
        found = []
        raw = self._input_blobs
        for span in self.spans:
            if span.kind is not SpanKind.INPUT:
                continue
            if after is not None and span.seq <= after.get(span.node, 0):
                continue
            sha = span.blobs.get("input")
            if sha and sha not in raw:
                raw[sha] = self.session.blob(sha)
            payload = decode_any(raw[sha]) if sha else span.attrs.get(attr.PAYLOAD)
            found.append(RecordedInput(span.start, span.node, span.name, span.trace, payload))
        found.sort(key=lambda i: (i.at, i.node, i.trace))
        return found

    def duration(self, key: StepKey) -> int | None:
        span = self.by_key.get(key)
        return None if span is None else span.duration

    def step_duration(self, key: StepKey, kind: str, name: str) -> int:
        """How long a replayed step takes: as recorded, else the median of its kind and name, else 0."""
        recorded = self.duration(key)
        if recorded is None:
            recorded = self.median_duration.get((kind, name), 0)
        return recorded or 0

    def delay(self, key: StepKey) -> tuple[bool, int | None]:
        """(known, delay): known=False when the recording never sent this message."""
        if key not in self.delays:
            return False, None
        return True, self.delays[key]


def _sends(span: Span) -> bool:
    if span.kind is SpanKind.SEND:
        return True
    # A state request sends; a served state op (it has a cause) sends the reply.
    return span.kind in (SpanKind.STATE_GET, SpanKind.STATE_PUT)
