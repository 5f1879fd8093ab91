"""The happens-before graph of one trace: what the trace view draws and the filter asks.

Edges are same-node program order (consecutive spans of a node in seq order) and message
causality (a span's `cause`, e.g. send → recv, request → served). Reachability is kept as
one bitmask per span, so `happens_before` is a shift and the causal past or future of a
selected span is one integer. The critical path is the longest chain by summed durations in
this DAG — the steps that, made faster, would make the trace faster.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

from edgetrace._records import Span, SpanKind

__all__ = ["TraceGraph"]


class TraceGraph:
    """Spans of one trace in a causal order, with reachability and the critical path."""

    def __init__(self, trace: str, spans: Iterable[Span]) -> None:
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
        self.origin: dict[str, int] = {}
        for s in order:
            self.origin[s.node] = min(self.origin.get(s.node, s.start), s.start)
        self.critical: list[int] = self._critical_path()
        self.critical_set = set(self.critical)

    def _critical_path(self) -> list[int]:
        if not self.spans:
            return []
        best: list[int] = []
        back: list[int] = []
        for i, s in enumerate(self.spans):
            choice, value = -1, 0
            for p in self.preds[i]:
                if best[p] > value or (best[p] == value and choice < 0):
                    choice, value = p, best[p]
            best.append(value + s.duration)
            back.append(choice)
        i = max(range(len(best)), key=lambda k: (best[k], -k))
        path = []
        while i >= 0:
            path.append(i)
            i = back[i]
        return path[::-1]

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
