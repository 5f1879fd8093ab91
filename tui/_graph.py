"""The happens-before graph of one trace, on one honest time axis: what the trace view draws.

Edges are same-node program order (consecutive spans of a node in seq order) and message
causality (a span's `cause`: send → recv, request → served). Reachability is kept as one
bitmask per span, so `happens_before` is a shift and the causal past or future of a selected
span is one integer.

Times: each span's local times plus its node's clock offset (`edgetrace._clock_offsets`)
put every node on one axis. Offsets come from message pairs, so they may still leave a
message arriving before it left (clocks that drift, one-way links); where that happens the
receiving node's spans from there on are moved later, just enough, and counted in `moved`
(a recv is never drawn before its send). Local times stay on the spans.

The critical path is the chain of blocking steps: from the span that finished last, step to
what it waited for — the latest-ending child nested inside it (an OpenTelemetry parent and
its children), else its latest-ending causal predecessor — until nothing is left. Its
length is the time from its first step's start to its last step's end, never more than the
trace lasted.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edgetrace._records import Span, SpanKind

__all__ = ["TraceGraph"]


class TraceGraph:
    """Spans of one trace in a causal order, with reachability, times and the critical path."""

    def __init__(self, trace: str, spans: Iterable[Span], *, offsets: Mapping[str, int] | None = None) -> None:
        self.trace = trace
        self.cache: dict[Any, Any] = {}
        by_ref: dict[str, Span] = {}
        for s in spans:
            by_ref.setdefault(s.ref, s)
        unique = sorted(by_ref.values(), key=lambda s: (s.node, s.seq))
        preds: dict[str, list[str]] = {s.ref: [] for s in unique}
        prev: dict[str, Span] = {}
        for s in unique:
            before = prev.get(s.node)
            if before is not None:
                preds[s.ref].append(before.ref)
            prev[s.node] = s
            if s.cause and s.cause in by_ref and by_ref[s.cause].node != s.node:
                preds[s.ref].append(s.cause)
        # Kahn's algorithm with a deterministic tie rule: depth, then node, then seq.
        depth: dict[str, int] = {}
        succs: dict[str, list[str]] = {s.ref: [] for s in unique}
        missing = {ref: len(p) for ref, p in preds.items()}
        for ref, before_refs in preds.items():
            for before_ref in before_refs:
                succs[before_ref].append(ref)
        ready = [s for s in unique if missing[s.ref] == 0]
        order: list[Span] = []
        heap = [(0, s.node, s.seq, s.ref) for s in ready]
        heapq.heapify(heap)
        while heap:
            d, _node, _seq, ref = heapq.heappop(heap)
            order.append(by_ref[ref])
            depth[ref] = d
            for nxt in succs[ref]:
                missing[nxt] -= 1
                if missing[nxt] == 0:
                    n = by_ref[nxt]
                    heapq.heappush(heap, (max(depth[p] for p in preds[nxt]) + 1, n.node, n.seq, nxt))
        if len(order) < len(unique):  # a cycle means bad cause refs: fall back to node order
            seen = {s.ref for s in order}
            order.extend(s for s in unique if s.ref not in seen)
            for s in unique:
                depth.setdefault(s.ref, 0)
        #: Read-only for its users: a `Sequence`, as the query language's `TraceContext` has it.
        self.spans: Sequence[Span] = order
        self.pos: dict[str, int] = {s.ref: i for i, s in enumerate(order)}
        self.depth = depth
        self.preds: list[list[int]] = [
            [self.pos[p] for p in preds[s.ref] if self.pos[p] < i] for i, s in enumerate(order)
        ]
        self.past: list[int] = []
        for ps in self.preds:
            mask = 0
            for p in ps:
                mask |= self.past[p] | (1 << p)
            self.past.append(mask)
        self.future: list[int] = [0] * len(order)
        for i in range(len(order) - 1, -1, -1):
            for p in self.preds[i]:
                self.future[p] |= self.future[i] | (1 << i)
        self.lanes: list[str] = list(dict.fromkeys(s.node for s in order))
        #: Each node's earliest local start in this trace (the detail shows local offsets from it).
        self.origin: dict[str, int] = {}
        for s in order:
            self.origin[s.node] = min(self.origin.get(s.node, s.start), s.start)
        self.offsets: dict[str, int] = {n: int((offsets or {}).get(n, 0)) for n in self.lanes}
        self.t_start: list[int] = []
        self.t_end: list[int] = []
        self.moved: dict[int, int] = {}  # span → ns it was moved later to keep causality
        self._place()
        self.t0 = min(self.t_start, default=0)
        self.t1 = max(self.t_end, default=0)
        self.children: list[list[int]] = [[] for _ in order]
        self.parent_of: list[int] = [-1] * len(order)
        for i, s in enumerate(order):
            p = self.pos.get(s.parent, -1) if s.parent else -1
            if p >= 0 and p != i:
                self.parent_of[i] = p
                self.children[p].append(i)
        self.critical: list[int] = self._critical_path()
        self.critical_set = set(self.critical)

    # --- the common time axis -------------------------------------------------------------

    def _place(self) -> None:
        """Common-axis times in causal order; a node is shifted later from the first of its
        spans that would otherwise receive a message before it was sent."""
        shift: dict[str, int] = {}
        for i, s in enumerate(self.spans):
            sh = shift.get(s.node, 0)
            off = self.offsets.get(s.node, 0) + sh
            start, end = s.start + off, s.end + off
            cause = self.pos.get(s.cause) if s.cause else None
            if cause is not None and cause < i and self.spans[cause].node != s.node:
                sent = self.t_end[cause]
                arrived = end if s.kind is SpanKind.RECV else start
                if arrived < sent:
                    extra = sent - arrived
                    self.moved[i] = extra
                    shift[s.node] = sh + extra
                    if s.kind is SpanKind.RECV:
                        end += extra  # its start is the call's, already drawn
                    else:
                        start, end = start + extra, end + extra
            self.t_start.append(start)
            self.t_end.append(max(start, end))

    def arrival(self, i: int) -> int:
        """When span i received its message, on the common axis."""
        s = self.spans[i]
        return self.t_end[i] if s.kind is SpanKind.RECV else self.t_start[i]

    @property
    def duration(self) -> int:
        """How long the trace lasted on the common axis."""
        return max(0, self.t1 - self.t0)

    def _critical_path(self) -> list[int]:
        if not self.spans:
            return []
        last = max(range(len(self.spans)), key=lambda k: (self.t_end[k], k))
        path = [last]
        seen = {last}
        i = last
        while True:
            nested = [c for c in self.children[i] if c not in seen and self.t_end[c] <= self.t_end[i]
                      and self.t_start[c] >= self.t_start[i]]
            if nested:
                nxt = max(nested, key=lambda c: (self.t_end[c], c))
            else:
                options = [p for p in self.preds[i] if p not in seen]
                if not options:
                    break
                # the predecessor that finished last blocked i; a message wins a tie
                nxt = max(options, key=lambda p: (self.t_end[p], self.spans[p].node != self.spans[i].node, p))
            path.append(nxt)
            seen.add(nxt)
            i = nxt
        return path[::-1]

    @property
    def critical_ns(self) -> int:
        """The critical path's length: its first start to its last end, on the common axis."""
        if not self.critical:
            return 0
        return max(self.t_end[i] for i in self.critical) - min(self.t_start[i] for i in self.critical)

    # --- the TraceContext protocol the query language uses ----------------------------

    def get(self, ref: str) -> Span | None:
        i = self.pos.get(ref)
        return None if i is None else self.spans[i]

    def happens_before(self, a: Span, b: Span) -> bool:
        ia, ib = self.pos.get(a.ref), self.pos.get(b.ref)
        if ia is None or ib is None:
            return False
        return bool(self.past[ib] >> ia & 1)

    # --- what the views ask ------------------------------------------------------------

    def causal_past(self, i: int) -> list[int]:
        return _bits(self.past[i])

    def causal_future(self, i: int) -> list[int]:
        return _bits(self.future[i])

    def provenance(self, i: int) -> list[int]:
        """The facts and model outputs a decision or action rests on, latest first.

        The first entry is where one provenance step jumps: from an act to the decision
        that led to it, from a decision to the model output (or, failing one, the input).
        """
        span = self.spans[i]
        past = self.causal_past(i)
        wanted = (
            (SpanKind.DECIDE, SpanKind.INFER, SpanKind.INPUT)
            if span.kind is SpanKind.ACT
            else (SpanKind.INFER, SpanKind.INPUT, SpanKind.STATE_GET, SpanKind.RECV)
        )
        facts = [j for j in past if self.spans[j].kind in (*wanted, SpanKind.STATE_GET, SpanKind.RECV)]
        facts.sort(key=lambda j: (wanted.index(self.spans[j].kind) if self.spans[j].kind in wanted
                                  else len(wanted), -j))
        return facts

    def index_of(self, ref: str) -> int | None:
        return self.pos.get(ref)

    def __len__(self) -> int:
        return len(self.spans)


def _bits(mask: int) -> list[int]:
    out = []
    i = 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out
