"""Provenance: the chain of steps a decision or an action rests on, across traces.

One step back from a span goes to what it was made from:

- an act → the decision that led to it;
- a decision (or a state write, or a send) → the model output it used, else the input;
  the state it read is listed beside the chain, not in it (it is a second source, not a
  cause of the model output);
- a model inference → its input;
- a received reply or message → the step that sent it (on another node, maybe in another
  trace);
- a state read the state host served → the latest write of that key the host served before
  it — usually another tractor's, in another trace;
- a state write the host served → the request that asked for it.

`chain` follows these steps from a span until an input (or nothing) is reached, so what the
trace view prints as `A ← B ← C` is a chain of real dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetrace._records import Span, SpanKind
from edgetrace.tui._span_columns import KIND_CODE
from edgetrace.tui._store import TraceStore

__all__ = ["Step", "also_rests_on", "chain", "step_back"]

_PUT = KIND_CODE["state.put"]


@dataclass(frozen=True)
class Step:
    """One link: `ref` is what the previous span rests on, `why` says how, in words."""

    ref: str
    span: Span
    why: str


def _latest_in_trace(store: TraceStore, span: Span, kinds: tuple[SpanKind, ...]) -> Span | None:
    """The latest span of these kinds in the span's causal past, inside its trace."""
    graph = store.graph(span.trace)
    i = graph.index_of(span.ref)
    if i is None:
        return None
    past = graph.causal_past(i)
    for kind in kinds:
        found = [j for j in past if graph.spans[j].kind is kind]
        if found:
            return graph.spans[max(found, key=lambda j: (graph.spans[j].node == span.node, j))]
    return None


def last_write(store: TraceStore, served: Span) -> int | None:
    """Span index of the latest write of `served`'s key on its node before it (a served put)."""
    t = store.table
    sp = t.spans
    m = t.span_count
    node = t.nodes.find(served.node)
    key = t.names.find(served.name)
    if node is None or key is None:
        return None
    hit = np.flatnonzero((sp.node[:m] == node) & (sp.kind[:m] == _PUT) & (sp.name[:m] == key)
                         & (sp.seq[:m] < served.seq))
    if not len(hit):
        return None
    return int(hit[np.argmax(sp.seq[hit])])


def step_back(store: TraceStore, span: Span) -> Step | None:
    """What `span` rests on, one step back (see the module docstring), or None."""
    kind = span.kind
    if kind is SpanKind.ACT:
        found = _latest_in_trace(store, span, (SpanKind.DECIDE,))
        return Step(found.ref, found, "decided by") if found else None
    if kind is SpanKind.INFER:
        found = _latest_in_trace(store, span, (SpanKind.INPUT,))
        return Step(found.ref, found, "ran on input") if found else None
    if span.cause:  # received something: a reply, a message, or a request the host served
        if kind is SpanKind.STATE_GET:
            i = last_write(store, span)
            if i is not None:
                (w,) = store.spans_at([i])
                return Step(w.ref, w, f"read the value {w.ref} wrote")
        sender = store.span(span.cause)
        if sender is not None:
            what = "requested by" if kind in (SpanKind.STATE_GET, SpanKind.STATE_PUT) else "sent by"
            return Step(sender.ref, sender, what)
        return None
    if kind in (SpanKind.DECIDE, SpanKind.STATE_PUT, SpanKind.SEND, SpanKind.LOG):
        found = _latest_in_trace(store, span, (SpanKind.INFER, SpanKind.INPUT))
        if found is not None:
            return Step(found.ref, found, "used the model output of" if found.kind is SpanKind.INFER
                        else "started from input")
    return None


def chain(store: TraceStore, span: Span, limit: int = 8) -> list[Step]:
    """Steps back from `span` until an input or nothing (at most `limit`, never a loop)."""
    steps: list[Step] = []
    seen = {span.ref}
    at = span
    while len(steps) < limit:
        nxt = step_back(store, at)
        if nxt is None or nxt.ref in seen:
            break
        steps.append(nxt)
        seen.add(nxt.ref)
        at = nxt.span
    return steps


def also_rests_on(store: TraceStore, span: Span) -> list[Span]:
    """State reads a decision used beside its chain: the replies in its past, in its trace."""
    if span.kind not in (SpanKind.DECIDE, SpanKind.ACT):
        return []
    graph = store.graph(span.trace)
    i = graph.index_of(span.ref)
    if i is None:
        return []
    return [graph.spans[j] for j in graph.causal_past(i)
            if graph.spans[j].kind is SpanKind.RECV and graph.spans[j].name.startswith("state.get")
            and graph.spans[j].cause]
