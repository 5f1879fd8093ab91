"""The columnar filter agrees with the query's own predicates, and the columnar
happens-before with the vector clocks' (`CausalIndex`)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetrace import Manifest, SessionWriter, Span, SpanKind, Status
from edgetrace._index import CausalIndex
from edgetrace._session import Session
from edgetrace.tui._causality import session_graph
from edgetrace.tui._filtering import TraceFilter
from edgetrace.tui._query import parse_query
from edgetrace.tui._ranges import Ranges
from edgetrace.tui._store import TraceStore
from edgetrace.tui._vector_query import Unsupported, matching_rows

NODES = ["hub", "t-1", "t-2", "t-3"]
KINDS = [SpanKind.INPUT, SpanKind.INFER, SpanKind.DECIDE, SpanKind.SEND, SpanKind.RECV, SpanKind.STATE_PUT,
         SpanKind.ACT, SpanKind.LOG]


def causal_session(path: Path, *, seed: int, spans: int = 300, traces: int = 25) -> Path:
    """Random spans on four nodes with causes to earlier spans of other nodes, within a trace
    and across traces, and the delta clocks those causes imply."""
    rng = random.Random(seed)
    clocks: dict[str, dict[str, int]] = {n: {} for n in NODES}
    at_span: dict[str, dict[str, int]] = {}  # each span's full clock, as its message carries it
    seqs = dict.fromkeys(NODES, 0)
    made: list[Span] = []
    for _ in range(spans):
        node = rng.choice(NODES)
        trace = f"tr-{rng.randrange(traces):03d}"
        kind = rng.choice(KINDS)
        cause = ""
        delta: dict[str, int] = {}
        others = [s for s in made[-40:] if s.node != node]
        if others and rng.random() < 0.35:
            src = rng.choice([s for s in others if s.trace == trace] or others)
            cause = src.ref
            for k, v in at_span[src.ref].items():
                if k != node and v > clocks[node].get(k, 0):
                    clocks[node][k] = delta[k] = v
        seqs[node] += 1
        at_span[f"{node}:{seqs[node]}"] = {**clocks[node], node: seqs[node]}
        start = rng.randrange(10**9)
        attrs: dict[str, object] = {}
        if kind is SpanKind.DECIDE:
            attrs = {"edgetrace.decision": rng.choice(["spray", "hold"])}
        elif kind is SpanKind.INFER:
            attrs = {"edgetrace.output": {"type": rng.choice(["weed", "none"]), "confidence": 0.5}}
        made.append(Span(node=node, seq=seqs[node], kind=kind, name=rng.choice(["a", "b", f"n{rng.randrange(5)}"]),
                         trace=trace, cause=cause, parent=cause, start=start, end=start + rng.randrange(10**8),
                         vc=dict(sorted(delta.items())), attrs=attrs,
                         status=Status.ERROR if rng.random() < 0.05 else Status.OK,
                         error="timeout after 1s" if rng.random() < 0.5 else "boom"))
    with SessionWriter(path, Manifest(app="rand")) as w:
        for at in range(0, len(made), 37):
            w.append(made[at:at + 37])
        w.seal()
    return path


ATOMS = ["kind=act", "kind=decide", "node=hub", "node~t-", "name=a", "name~n*", "duration>50ms", "duration<=10ms",
         "seq>5", "seq=3", "status=error", "error~timeout", "decision=spray", "output.type=weed", "attr.missing=none",
         "from=hub", "from~t-*", "spans>12", "nodes=2", "trace~tr-00", "a", "hub", "spray", "3", "parent~hub*",
         "cause=t-1:2", "ref=hub:4", "state.key=none"]
REFS = ["hub:3", "t-1:2", "t-2:5", "t-3:9", "hub:20"]


def queries() -> st.SearchStrategy[str]:
    atom = st.sampled_from(ATOMS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or", "without"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda q: f"not {q}"),
            st.tuples(st.sampled_from(["before", "after"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(["before", "after", "concurrent"]), st.sampled_from(REFS)).map(
                lambda t: f"{t[0]}({t[1]})"),
        )

    return st.recursive(atom, extend, max_leaves=5)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[TraceStore, list]]:
    folder = tmp_path_factory.mktemp("vq")
    out = []
    for seed in (1, 2, 3):
        store = TraceStore(causal_session(folder / f"r{seed}.ets", seed=seed))
        store.scan()
        store.estimate_clocks()
        out.append((store, list(store.iter_rows_graphs())))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=queries(), which=st.integers(0, 2))
def test_columns_and_predicates_agree(stores, text: str, which: int):
    store, graphs = stores[which]
    query = parse_query(text)
    expected = sorted(row for row, g in graphs if query.matches_trace(g))
    try:
        got = matching_rows(store, query).tolist()
    except Unsupported:
        return
    assert got == expected, text


def test_the_toy_sessions_agree(toy_session: Path, race_session: Path, skewed_session: Path):
    for path in (toy_session, race_session, skewed_session):
        store = TraceStore(path)
        store.scan()
        graphs = list(store.iter_rows_graphs())
        for text in ["kind=act", "spray", "kind=act without after(kind=decide)", "after(kind=state.put)",
                     "before(kind=recv) and node=hub", "from=hub", "decision=spray or decision=go",
                     "concurrent(t-0:3)", "state.key~zones*", "nodes=2 and spans>8"]:
            q = parse_query(text)
            assert matching_rows(store, q).tolist() == sorted(r for r, g in graphs if q.matches_trace(g)), text


def test_what_the_columns_cannot_answer_is_decoded(toy_session: Path):
    store = TraceStore(toy_session)
    store.scan()
    q = parse_query("concurrent(kind=act)")
    flt = TraceFilter(store, q, Ranges())
    assert flt.quick  # a small session decodes at once
    graphs = list(store.iter_rows_graphs())
    assert flt.run().tolist() == sorted(r for r, g in graphs if q.matches_trace(g))
    assert not flt.columnar


def test_ranges_narrow_the_rows(toy_session: Path):
    store = TraceStore(toy_session)
    store.scan()
    rows = list(store.rows)
    t0 = min(r.start for r in rows)
    mid = sorted(r.start - t0 for r in rows)[len(rows) // 2]
    found = TraceFilter(store, parse_query(""), Ranges(start_lo=mid)).run().tolist()
    assert found == [r.index for r in rows if r.start - t0 >= mid]
    slow = TraceFilter(store, parse_query("kind=act"), Ranges(dur_lo=500_000_000)).run().tolist()
    assert slow == [r.index for r in rows if r.duration >= 500_000_000 and r.acts]


@pytest.mark.parametrize("which", ["toy", "race", "skewed", "random"])
def test_happens_before_is_the_vector_clocks(which: str, toy_session: Path, race_session: Path,
                                            skewed_session: Path, tmp_path: Path):
    path = {"toy": toy_session, "race": race_session, "skewed": skewed_session}.get(which) or \
        causal_session(tmp_path / "r.ets", seed=9, spans=200)
    store = TraceStore(path)
    store.scan()
    graph = session_graph(store)
    spans = Session(path).spans
    index = CausalIndex(spans)
    at = {s.ref: store.span_index(s.ref) for s in spans}
    rng = random.Random(4)
    pairs = [(a, b) for a in spans for b in spans] if len(spans) <= 120 else \
        [(rng.choice(spans), rng.choice(spans)) for _ in range(6000)]
    for a, b in pairs:
        assert graph.happens_before(at[a.ref], at[b.ref]) == index.happens_before(a, b), (a.ref, b.ref)
    levels = graph.levels()
    for a, b in pairs[:2000]:
        if index.happens_before(a, b):
            assert levels[at[a.ref]] < levels[at[b.ref]]
