"""The filter language: each operator on a real trace, and malformed input never crashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrace import Span, SpanKind
from edgetrace.tui import TraceGraph
from edgetrace.tui._query import QueryError, parse_query
from edgetrace.tui._store import TraceStore


@pytest.fixture(scope="module")
def graphs(toy_session: Path) -> list[TraceGraph]:
    store = TraceStore(toy_session)
    store.scan()
    return list(store.iter_graphs())


def matching(graphs: list[TraceGraph], text: str) -> list[str]:
    q = parse_query(text)
    return [g.trace for g in graphs if q.matches_trace(g)]


def test_comparisons_and_text(graphs):
    acts = matching(graphs, "kind=act")
    assert acts and len(acts) < len(graphs)
    assert matching(graphs, "kind=act and node~t-0*") == [
        g.trace for g in graphs if any(s.kind is SpanKind.ACT and s.node == "t-0" for s in g.spans)
    ]
    assert matching(graphs, "kind=act or kind!=act") == [g.trace for g in graphs]
    assert matching(graphs, "duration>1h") == []
    assert matching(graphs, "duration>=0ns") == [g.trace for g in graphs]
    assert matching(graphs, "attr.edgetrace.decision=spray") == acts
    assert matching(graphs, "edgetrace.decision=spray") == acts
    assert matching(graphs, "spray") and matching(graphs, '"spray"') == matching(graphs, "spray")
    assert matching(graphs, "not kind=act") == [g.trace for g in graphs]  # every trace has other spans


def test_causal_operators(graphs):
    g = next(g for g in graphs if any(s.kind is SpanKind.ACT for s in g.spans))
    act = next(s for s in g.spans if s.kind is SpanKind.ACT)
    before = parse_query(f"before({act.ref})").matching(g)
    after = parse_query(f"after({act.ref})").matching(g)
    concurrent = parse_query(f"concurrent({act.ref})").matching(g)
    assert any(s.kind is SpanKind.INPUT for s in before)
    assert all(g.happens_before(s, act) for s in before)
    assert all(g.happens_before(act, s) for s in after)
    assert {s.ref for s in before} | {s.ref for s in after} | {s.ref for s in concurrent} | {act.ref} == {
        s.ref for s in g.spans
    }
    # every act follows a decision, so "act without a decision in its past" finds nothing ...
    assert matching(graphs, "kind=act without after(kind=decide)") == []
    # ... while every act has a decide before it
    assert matching(graphs, "kind=act and after(kind=decide)") == matching(graphs, "kind=act")
    # sends that nothing causally follows inside the trace
    sends = matching(graphs, "kind=decide without before(kind=act)")
    assert set(sends) == {t for t in (g.trace for g in graphs)} - set(matching(graphs, "kind=act"))


@pytest.mark.parametrize("text", [
    "kind=", "=x", "(kind=act", "kind=act)", "before(", "before()", "after(x", "duration>fast",
    "bogus=1", "kind===act", "and", "a or", "not", '"unclosed', "kind=act without", "seq>x", "!x",
])
def test_malformed_queries_give_one_clear_error(text):
    with pytest.raises(QueryError) as info:
        parse_query(text)
    message = str(info.value)
    assert "\n" not in message and ("expected" in message or "unclosed" in message or "needs" in message)


def _graph() -> TraceGraph:
    spans = [
        Span(node="a", seq=1, kind=SpanKind.INPUT, name="in", trace="t", start=0, end=5),
        Span(node="a", seq=2, kind=SpanKind.SEND, name="go", trace="t", start=5, end=6),
        Span(node="b", seq=1, kind=SpanKind.RECV, name="go", trace="t", cause="a:2", start=50, end=60,
             attrs={"x": 1, "nested": {"k": [1, 2]}}),
        Span(node="b", seq=2, kind=SpanKind.ACT, name="spray", trace="t", start=60, end=61),
    ]
    return TraceGraph("t", spans)


ALPHABET = st.sampled_from([*list("()=!~<>\"' abkindrsafteobcu:1.*-"), "kind", "and", "or", "not", "without", "before(", "after(", "concurrent(", "a:1", "500ms", "node"])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=14).map("".join) | st.text(max_size=40))
def test_any_input_parses_or_raises_query_error(text):
    graph = _graph()
    try:
        query = parse_query(text)
    except QueryError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    query.matches_trace(graph)  # a parsed query never crashes when evaluated


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(QueryError):
        parse_query("(" * 5000 + "x" + ")" * 5000)


def test_graph_critical_path_and_provenance():
    g = _graph()
    assert [g.spans[i].ref for i in g.critical] == ["a:1", "a:2", "b:1", "b:2"]
    act = g.index_of("b:2")
    assert act is not None
    assert g.spans[g.provenance(act)[0]].kind in (SpanKind.RECV, SpanKind.INPUT)
    assert g.happens_before(g.spans[0], g.spans[3]) and not g.happens_before(g.spans[3], g.spans[0])


def test_a_new_query_never_reads_an_old_querys_memo(graphs):
    # operators were once memoised by id(): after the first query was garbage-collected its
    # ids came back for the next query's operators, which then read stale answers
    import gc

    g = next(g for g in graphs if any(s.kind is SpanKind.ACT for s in g.spans))
    first = parse_query("kind=decide without before(kind=act)").matching(g)
    for _ in range(50):
        parse_query("kind=input and before(kind=log)").matching(g)
        gc.collect()
        assert parse_query("kind=decide without before(kind=act)").matching(g) == first


def test_one_spelling_shared_with_invariants(graphs):
    # `==` is `=`; the invariant language's shorthands name the same attributes here
    assert matching(graphs, "kind==act") == matching(graphs, "kind=act")
    assert matching(graphs, "kind=decide decision=spray") == matching(graphs, "attr.edgetrace.decision=spray")
    assert matching(graphs, "attrs.edgetrace.decision=spray") == matching(graphs, "attr.edgetrace.decision=spray")
    with pytest.raises(QueryError, match="shorthand"):
        parse_query("decisoin=spray")


def test_search_box_rules():
    g = _graph()
    recv = g.spans[2]

    def hit(text: str) -> bool:
        return parse_query(text).matches_span(recv, g)

    assert hit("name=GO") and hit("NAME=go") and hit("node~B")  # case-folded text, any field name case
    assert hit("name~o") and not hit("name~o*") and hit("name~*o")  # plain text is a substring, a glob is whole
    assert hit("attr.x=1") and hit("attr.x=1.0") and hit("attr.x>0.5")  # numbers compare as numbers
    assert hit("attr.nested~*k*") and hit("attr.missing=none") and hit("attr.missing!=1")  # shown text; absent
    assert not hit("attr.missing>0") and not hit("name>1")  # absent values and text never order against numbers
