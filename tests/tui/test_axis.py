"""One honest time axis: skewed clocks corrected, a recv never drawn before its send."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetrace import Span, SpanKind
from edgetrace.tui._graph import TraceGraph
from edgetrace.tui._span_chart import SpanChart
from edgetrace.tui._store import TraceStore


def _messages(g: TraceGraph) -> list[tuple[int, int]]:
    """(sender, receiver) positions of every cross-node message inside the trace."""
    out = []
    for i, s in enumerate(g.spans):
        j = g.index_of(s.cause) if s.cause else None
        if j is not None and g.spans[j].node != s.node:
            out.append((j, i))
    return out


def _graphs(store: TraceStore) -> list[TraceGraph]:
    return [store.graph(r.trace) for r in store.rows]


def test_skew_is_estimated_from_message_pairs(skewed_session: Path):
    store = TraceStore(skewed_session)
    store.scan()
    clock = store.estimate_clocks()
    assert clock.reference == "hub"
    assert abs(clock.offsets["t-1"] - 2_000_000_000) < clock.uncertainty["t-1"]  # type: ignore[operator]
    assert "round trips with hub" in clock.method["t-1"]
    # the others agree with the hub: left alone
    assert clock.offsets["t-0"] == clock.offsets["t-2"] == 0
    # trace durations on the common axis are the toy's, not two seconds off
    assert max(r.duration for r in store.rows) < 1_500_000_000


def test_recv_never_drawn_before_its_send(skewed_session: Path):
    store = TraceStore(skewed_session)
    store.scan()
    store.estimate_clocks()
    pairs = 0
    for g in _graphs(store):
        for j, i in _messages(g):
            pairs += 1
            assert g.arrival(i) >= g.t_end[j], (g.trace, g.spans[j].ref, g.spans[i].ref)
            if g.spans[i].kind is SpanKind.RECV:
                assert g.t_end[i] >= g.t_end[j]
    assert pairs > 20


def test_without_offsets_the_same_session_would_lie(skewed_session: Path):
    """The check above is not vacuous: on the raw local clocks messages arrive before they
    were sent; with no offsets at all the graph moves the late node instead."""
    store = TraceStore(skewed_session)
    store.scan()
    raw = [(s, g) for g in _graphs(store) for s in _messages(g)
           if g.spans[s[1]].end < g.spans[s[0]].end]
    assert raw, "the skew fault should leave messages arriving before they left"
    for r in store.rows:
        g = TraceGraph(r.trace, store.graph(r.trace).spans, offsets={})
        for j, i in _messages(g):
            assert g.arrival(i) >= g.t_end[j]
    assert any(TraceGraph(r.trace, store.graph(r.trace).spans, offsets={}).moved for r in store.rows)


def test_drawn_bars_keep_the_order(skewed_session: Path):
    """What the waterfall draws: the recv's bar ends at or after the column its send ends."""
    store = TraceStore(skewed_session)
    store.scan()
    store.estimate_clocks()
    g = next(g for g in _graphs(store) if any(s.node == "t-1" for s in g.spans))
    chart = SpanChart(g)
    for j, i in _messages(g):
        assert chart.bar_columns(i, 60)[1] >= chart.bar_columns(j, 60)[1]


def test_a_drifting_clock_moves_spans_rather_than_lie():
    """Two messages a → b that no single offset of b can honour: b's clock runs slow. The
    graph keeps causality by moving b's later spans, and says so (`moved`)."""
    spans = [
        Span(node="a", seq=1, kind=SpanKind.SEND, name="x", trace="t", start=1_000, end=1_000),
        Span(node="b", seq=1, kind=SpanKind.RECV, name="x", trace="t", cause="a:1", start=1_100, end=1_100),
        Span(node="a", seq=2, kind=SpanKind.SEND, name="y", trace="t", start=10_000, end=10_000),
        Span(node="b", seq=2, kind=SpanKind.RECV, name="y", trace="t", cause="a:2", start=5_000, end=5_000),
        Span(node="b", seq=3, kind=SpanKind.LOG, name="after", trace="t", start=5_100, end=5_200),
    ]
    g = TraceGraph("t", spans, offsets={"a": 0, "b": 0})
    for j, i in _messages(g):
        assert g.arrival(i) >= g.t_end[j]
    moved = {g.spans[i].ref for i in g.moved}
    assert moved == {"b:2"}
    log = g.index_of("b:3")
    assert log is not None and g.t_start[log] >= g.t_end[g.index_of("b:2")]  # type: ignore[index]


@pytest.mark.parametrize("children", [5, 50])
def test_otel_critical_path_never_exceeds_the_trace(otel_session: Path, tmp_path: Path, children: int):
    from sessions import otel_session as make

    path = otel_session if children == 50 else make(tmp_path / "small.ets", children)
    store = TraceStore(path)
    store.scan()
    g = store.graph(store.rows[0].trace)
    assert g.duration == 2_100_000
    assert 0 < g.critical_ns <= g.duration
    # the root waited on its children, one after the other: all of them block it
    assert g.critical[-1] == g.index_of("otel:checkout:1") and len(g.critical) == children + 1


def test_the_fleet_shows_each_clock_offset_per_node_and_per_link(skewed_session: Path):
    """t-1's clock reads 2 s behind: the fleet says so for the node and on its links."""
    from edgetrace.tui._fleet import fleet
    from edgetrace.tui._fleet_view import link_head, link_line, node_line

    store = TraceStore(skewed_session)
    store.scan()
    data = fleet(store)
    node = next(n for n in data.nodes if n.node == "t-1")
    assert node.offset.startswith(("+1.9", "+2")) and "round trips" in node.method
    assert node.offset in node_line(node, 120)
    out = next(ls for ls in data.links if (ls.src, ls.dst) == ("t-1", "hub"))
    back = next(ls for ls in data.links if (ls.src, ls.dst) == ("hub", "t-1"))
    assert abs(out.clock_delta - 2_000_000_000) < 50_000_000 and back.clock_delta == -out.clock_delta
    assert "rx clock" in link_head(120) and link_line(out, 120).split()[-1].startswith(("+1.9", "+2"))
    assert "rx clock" not in link_head(80)  # at 80 columns the names keep the room
