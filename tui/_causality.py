"""Causality across traces: what a span's message connects it to, its causal neighbourhood in
the whole session, and the races around it.

`session_graph` is happens-before over every scanned span (same-node program order and
every cross-node cause, which is what the vector clocks encode — a test checks it against
`CausalIndex`). On it:

- `counterparts`: the other end of a span's messages (its cause; the spans it caused), in
  whatever trace they are;
- `neighbourhood`: a span's causal past and future within a time window across all traces,
  with the concurrent steps of the same nodes — what the causal view shows around a span;
- `races`: pairs of state operations on the same key from different nodes, at least one a
  write, neither happened before the other (the outcome depends on which the state host
  served first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgetrace.tui._reach import ChainGraph
from edgetrace.tui._span_columns import KIND_CODE
from edgetrace.tui._store import TraceStore

__all__ = ["Neighbourhood", "Race", "counterparts", "neighbourhood", "races", "session_graph"]

Idx = npt.NDArray[np.int64]
_RECV = KIND_CODE["recv"]
_GET, _PUT = KIND_CODE["state.get"], KIND_CODE["state.put"]
#: Spans a causal view shows at most (the ones nearest the focus in time win).
VIEW_LIMIT = 240


def session_graph(store: TraceStore) -> ChainGraph:
    """Happens-before over every scanned span (kept until more spans are scanned)."""

    def build() -> ChainGraph:
        sp = store.table.spans
        m = store.table.span_count
        from edgetrace.tui._messages import causes

        cause = causes(store.table, m)
        ok = cause >= 0
        safe = np.where(ok, cause, 0)
        cross = ok & (sp.node[safe] != sp.node[:m])
        return ChainGraph(sp.node[:m].astype(np.int64), sp.seq[:m].astype(np.int64), np.where(cross, cause, -1))

    return store.derived("causality.session", build)


def axis_times(store: TraceStore, idx: Idx) -> tuple[Idx, Idx]:
    """(start, end) of spans on the common time axis."""
    sp = store.table.spans
    off = store.table.node_offsets(len(store.table.nodes))[sp.node[idx]]
    return sp.start[idx] + off, sp.end[idx] + off


def counterparts(store: TraceStore, i: int) -> tuple[int | None, list[int]]:
    """(the span whose message span i received, the spans that received i's), across traces."""
    g = session_graph(store)
    cause = int(g.cause[i]) if i < len(g.cause) else -1
    kids = g.children(np.array([i], np.int64)).tolist()
    return (cause if cause >= 0 else None), sorted(kids)


@dataclass
class Neighbourhood:
    """Spans to show around a focus, and how each relates to it."""

    focus: int
    spans: Idx  # span indices, in causal order
    past: npt.NDArray[np.bool_]  # per shown span
    future: npt.NDArray[np.bool_]
    window: tuple[int, int]  # common-axis bounds searched (ns)


def event_times(store: TraceStore) -> Idx:
    """When each span happened on the common axis, nudged to be consistent with causality
    (a receive is the arrival: the end of a recv span, the start of any other), kept per scan."""

    def build() -> Idx:
        m = store.table.span_count
        sp = store.table.spans
        start, end = axis_times(store, np.arange(m, dtype=np.int64))
        at = np.where(sp.kind[:m] == _RECV, end, start)
        return session_graph(store).causal_times(at)

    return store.derived("causality.times", build, version=store.clock_version)


def _order(store: TraceStore, idx: Idx) -> Idx:
    """Span indices in causal order, as near to the clocks' order as causality allows."""
    if not len(idx):
        return idx
    at = event_times(store)[idx]
    sp = store.table.spans
    order = np.lexsort((sp.seq[idx], sp.node[idx], session_graph(store).levels()[idx], at))
    return idx[order]


def relate(store: TraceStore, focus: int, idx: Idx) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """For each span in idx: in the focus's causal past? in its future?"""
    g = session_graph(store)
    src = np.array([focus], np.int64)
    if not len(idx):
        return np.zeros(0, bool), np.zeros(0, bool)
    lv = g.levels()
    past = g.ancestors(src, floor=int(lv[idx].min()))[idx]
    future = g.descendants(src, cap=int(lv[idx].max()))[idx]
    return past, future


def neighbourhood(store: TraceStore, focus: int, *, window_ns: int | None = None,
                  limit: int = VIEW_LIMIT) -> Neighbourhood:
    """The focus's causal past and future within ±window on the common axis, across every
    trace, plus the concurrent steps of the nodes those touch; at most `limit` spans."""
    m = store.table.span_count
    g = session_graph(store)
    src = np.array([focus], np.int64)
    start_all, _ = axis_times(store, np.arange(m, dtype=np.int64))
    f_start, f_end = axis_times(store, src)
    if window_ns is None:  # by default: the focus trace's own length, at least 1 s, each way
        row = store.row(int(store.table.spans.trace[focus]))
        window_ns = max(1_000_000_000, 2 * row.duration)
    lo, hi = int(f_start[0]) - window_ns, int(f_end[0]) + window_ns
    inside = (start_all >= lo) & (start_all <= hi)
    lv = g.levels()
    in_idx = np.flatnonzero(inside)
    floor = int(lv[in_idx].min()) if len(in_idx) else 0
    cap = int(lv[in_idx].max()) if len(in_idx) else 0
    past_all = g.ancestors(src, floor=floor) & inside
    future_all = g.descendants(src, cap=cap) & inside
    related = past_all | future_all
    related[focus] = True
    nodes = np.unique(store.table.spans.node[:m][related])
    others = inside & ~related & np.isin(store.table.spans.node[:m], nodes)
    picked = np.flatnonzero(related)
    # nearest in time first, past/future before concurrent steps
    distance = np.abs(start_all - int(f_start[0]))
    if len(picked) > limit:
        picked = picked[np.argsort(distance[picked], kind="stable")[:limit]]
    room = limit - len(picked)
    if room > 0:
        extra = np.flatnonzero(others)
        extra = extra[np.argsort(distance[extra], kind="stable")[:room]]
        picked = np.concatenate((picked, extra))
    if focus not in picked:
        picked = np.concatenate((picked, [focus]))
    ordered = _order(store, picked.astype(np.int64))
    return Neighbourhood(focus, ordered, past_all[ordered], future_all[ordered], (lo, hi))


@dataclass(frozen=True)
class Race:
    """Two state operations on `key` from different nodes that neither happened before the other."""

    a: int
    b: int
    key: str
    kinds: str  # "write/write" or "write/read"


def races(store: TraceStore, idx: Idx) -> list[Race]:
    """Races among the given spans' state operations as their nodes issued them (the steps
    the state host served are in program order there, so they never race each other)."""
    sp = store.table.spans
    kinds = sp.kind[idx]
    ops = idx[((kinds == _GET) | (kinds == _PUT)) & (sp.cause_node[idx] == 0)]
    if len(ops) < 2:
        return []
    g = session_graph(store)
    lv = g.levels()
    names = store.table.names.text
    by_key: dict[int, list[int]] = {}
    for i in ops.tolist():
        by_key.setdefault(int(sp.name[i]), []).append(i)
    found: list[Race] = []
    for key, members in sorted(by_key.items()):
        if len(members) < 2 or not any(sp.kind[i] == _PUT for i in members):
            continue
        hi = int(lv[members].max())
        later = {i: g.descendants(np.array([i], np.int64), cap=hi) for i in members}
        for x, a in enumerate(members):
            for b in members[x + 1:]:
                if sp.node[a] == sp.node[b]:
                    continue
                if sp.kind[a] != _PUT and sp.kind[b] != _PUT:
                    continue
                if later[a][b] or later[b][a]:
                    continue
                kinds_text = "write/write" if sp.kind[a] == _PUT and sp.kind[b] == _PUT else "write/read"
                found.append(Race(a, b, names[key], kinds_text))
    return found
