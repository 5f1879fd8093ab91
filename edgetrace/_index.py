"""The causal index of a session: happens-before without a full scan.

Built in one pass over the records, it keeps, per node stream, the sequence numbers at which
each *other* node's clock entry changed (the records' delta clocks say exactly that). Then:

- `happens_before(a, b)` is one bisect: a → b iff b's clock entry for a's node ≥ a's seq;
- the causal past of a is, per node, a prefix of that node's stream (bounded by a's clock);
- the causal future of a is, per node, a suffix (the first record whose entry reached a).

A span's own entry is its seq, so a local step needs no index entry at all.
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from edgetrace._errors import UsageError
from edgetrace._records import Span, parse_ref
from edgetrace._vclock import VectorClock

__all__ = ["CausalIndex"]

SpanLike = Span | str


class _Stream:
    """One node's records, in seq order, with the change points of every other entry."""

    __slots__ = ("changes", "clock", "seqs", "spans", "sums", "total")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.spans: list[Span] = []
        self.sums: list[int] = []
        self.changes: dict[str, tuple[array[int], array[int]]] = {}
        self.clock: dict[str, int] = {}
        self.total = 0

    def add(self, span: Span) -> None:
        if self.seqs and span.seq <= self.seqs[-1]:
            if span.seq in self.seqs:
                return  # a duplicate delivery of the same record: keep the first
            raise UsageError(
                f"records of node {span.node!r} out of order: seq {span.seq} after {self.seqs[-1]}"
            )
        for other, value in span.vc.items():
            entry = self.changes.get(other)
            if entry is None:
                # packed arrays, not lists of int objects: at 1M records the index's memory
                # traffic is what a happens_before query waits on
                entry = self.changes[other] = (array("q"), array("q"))
            try:
                entry[0].append(span.seq)
                entry[1].append(value)
            except (OverflowError, TypeError):
                raise UsageError(f"span {span.ref}: clock entry {other!r}={value!r} is not a 64-bit count") from None
            self.total += value - self.clock.get(other, 0)
            self.clock[other] = value
        self.seqs.append(span.seq)
        self.spans.append(span)
        self.sums.append(self.total + span.seq)

    def entry(self, other: str, seq: int) -> int:
        """This stream's clock entry for `other` as of its record `seq`."""
        change = self.changes.get(other)
        if change is None:
            return 0
        i = bisect_right(change[0], seq) - 1
        return change[1][i] if i >= 0 else 0


class CausalIndex:
    """Answers causal questions about a set of records from their delta clocks."""

    def __init__(self, spans: Iterable[Span] = ()) -> None:
        self._streams: dict[str, _Stream] = {}
        self.extend(spans)

    def extend(self, spans: Iterable[Span]) -> None:
        pending: dict[str, list[Span]] = {}
        for span in spans:
            pending.setdefault(span.node, []).append(span)
        for node, items in pending.items():
            stream = self._streams.get(node)
            if stream is None:
                stream = self._streams[node] = _Stream()
            if any(b.seq < a.seq for a, b in itertools.pairwise(items)):
                items.sort(key=lambda s: s.seq)
            for span in items:
                stream.add(span)

    # --- lookups -------------------------------------------------------------------------

    def _locate(self, item: SpanLike) -> tuple[str, int]:
        if isinstance(item, Span):
            return item.node, item.seq
        try:
            return parse_ref(item)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def _stream(self, node: str) -> _Stream:
        stream = self._streams.get(node)
        if stream is None:
            raise UsageError(f"no node {node!r} in this session")
        return stream

    def span(self, ref: str) -> Span:
        node, seq = self._locate(ref)
        stream = self._stream(node)
        i = bisect_left(stream.seqs, seq)
        if i == len(stream.seqs) or stream.seqs[i] != seq:
            raise UsageError(f"no span {ref!r} in this session")
        return stream.spans[i]

    @property
    def nodes(self) -> list[str]:
        return sorted(self._streams)

    def clock(self, item: SpanLike) -> VectorClock:
        """The full vector clock of a record, rebuilt from the change points."""
        node, seq = self._locate(item)
        stream = self._stream(node)
        entries = {other: stream.entry(other, seq) for other in stream.changes}
        entries[node] = seq
        return VectorClock(entries)

    def happens_before(self, a: SpanLike, b: SpanLike) -> bool:
        # the explorer and the invariants ask this millions of times: spans take a fast path
        if type(a) is str and type(b) is str:  # refs: split without the validating parser
            na, _, ta = a.rpartition(":")
            nb, _, tb = b.rpartition(":")
            if not (na and nb and ta.isdigit() and tb.isdigit()):
                self._locate(a), self._locate(b)  # raises the usual error
            sa, sb = int(ta), int(tb)
        else:
            na, sa = (a.node, a.seq) if type(a) is Span else self._locate(a)
            nb, sb = (b.node, b.seq) if type(b) is Span else self._locate(b)
        if na == nb:
            return sa < sb
        stream = self._streams.get(nb)
        if stream is None:
            return False
        change = stream.changes.get(na)
        if change is None:
            return False
        i = bisect_right(change[0], sb) - 1
        return i >= 0 and change[1][i] >= sa

    def concurrent(self, a: SpanLike, b: SpanLike) -> bool:
        return (
            self._locate(a) != self._locate(b)
            and not self.happens_before(a, b)
            and not self.happens_before(b, a)
        )

    def causal_past(self, item: SpanLike, *, trace: str | None = None) -> list[Span]:
        """Every record that happened before `item` (not itself), in causal order."""
        node, seq = self._locate(item)
        clock = self.clock(f"{node}:{seq}")
        found: list[Span] = []
        for other, bound in clock.items():
            stream = self._streams.get(other)
            if stream is None:
                continue
            limit = seq if other == node else bound + 1
            found.extend(stream.spans[: bisect_left(stream.seqs, limit)])
        if trace is not None:
            found = [s for s in found if s.trace == trace]
        return self.causal_sort(found)

    def causal_future(self, item: SpanLike, *, trace: str | None = None) -> list[Span]:
        """Every record that `item` happened before, in causal order."""
        node, seq = self._locate(item)
        found: list[Span] = []
        for other, stream in self._streams.items():
            if other == node:
                found.extend(stream.spans[bisect_right(stream.seqs, seq) :])
                continue
            change = stream.changes.get(node)
            if change is None:
                continue
            i = bisect_left(change[1], seq)
            if i < len(change[1]):
                first = change[0][i]
                found.extend(stream.spans[bisect_left(stream.seqs, first) :])
        if trace is not None:
            found = [s for s in found if s.trace == trace]
        return self.causal_sort(found)

    def clock_sum(self, span: Span) -> int:
        stream = self._stream(span.node)
        i = bisect_left(stream.seqs, span.seq)
        if i == len(stream.seqs) or stream.seqs[i] != span.seq:
            raise UsageError(f"span {span.ref!r} is not in this index")
        return stream.sums[i]

    def causal_sort(self, spans: Iterable[Span]) -> list[Span]:
        """A linear extension of happens-before, the same on every run.

        If a → b then every entry of a's clock is ≤ b's and one is smaller, so the sum of
        entries strictly grows along every causal chain; ties break by node and seq.
        """
        return sorted(spans, key=lambda s: (self.clock_sum(s), s.node, s.seq))
