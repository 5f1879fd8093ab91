"""Clocks by reference: a receive stored as its send's ref gives exactly the clocks of the delta form."""

from __future__ import annotations

import clock_histories  # tests/core/clock_histories.py (pytest puts this folder on sys.path)
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetrace import CausalIndex, _index
from edgetrace._clockref import DENSE_CELLS
from edgetrace._compact import compact
from edgetrace._errors import CorruptSessionError, UsageError
from edgetrace._records import CLOCK_REF_VERSION, FORMAT_VERSION, Manifest, Span, SpanKind
from edgetrace._session import Session, SessionWriter

NODES = ["a", "b", "c", "d"]


def histories():
    """Four recorders; sends and receives drawn twice as often as local steps, never to oneself."""
    return clock_histories.histories(NODES, steps=50, actions=["local", "send", "send", "recv", "recv"],
                                     self_sends=False)


def by_reference(spans: list[Span], full) -> list[Span]:
    """The definition: each receive as its cause's ref plus the entries the merge does not explain."""
    previous: dict[str, dict[str, int]] = {}
    out = []
    for span in spans:
        mine = {k: v for k, v in full[span.ref].items() if k != span.node}
        if span.kind is SpanKind.RECV and span.cause:
            before = previous.get(span.node, {})
            want = dict(before)
            for k, v in full[span.cause].items():
                if k != span.node and v > want.get(k, 0):
                    want[k] = v
            residual = {k: mine.get(k, 0) for k in sorted(set(want) | set(mine)) if want.get(k, 0) != mine.get(k, 0)}
            span = msgspec.structs.replace(span, vc=residual, merged=span.cause)
        previous[span.node] = mine
        out.append(span)
    return out


@pytest.fixture(params=["dense", "sparse"])
def rows(request, monkeypatch):
    """Both kinds of rows the resolver keeps: dense numpy rows and dicts for huge grids."""
    from edgetrace import _clockref

    monkeypatch.setattr(_clockref, "DENSE_CELLS", DENSE_CELLS if request.param == "dense" else 0)
    return request.param


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # `rows` is set once per kind, on purpose
@given(histories(), st.randoms(use_true_random=False), st.lists(st.integers(0, 60), max_size=3))
def test_references_give_the_clocks_of_the_delta_form(rows, history, rng, cuts):
    spans, full = history
    refs = by_reference(spans, full)
    shuffled = refs[:]
    rng.shuffle(shuffled)
    index = CausalIndex(shuffled)
    delta = CausalIndex(spans)
    for span in spans:
        assert index.clock(span) == full[span.ref]
        assert index.clock_sum(span) == delta.clock_sum(span)
    # in batches, as a growing session is read: each reference's record in the same or an earlier batch
    bounds = sorted(min(c, len(refs)) for c in cuts)
    grown = CausalIndex()
    for a, b in zip([0, *bounds], [*bounds, len(refs)], strict=True):
        grown.extend(refs[a:b])
    for a in spans:
        assert grown.clock(a) == full[a.ref]
        for b in spans[:20]:
            assert grown.happens_before(a, b) == full[a.ref].happens_before(full[b.ref])


def test_a_missing_record_a_cycle_and_a_reference_to_itself_are_errors():
    a1 = Span(node="a", seq=1, kind=SpanKind.SEND, name="m")
    with pytest.raises(UsageError, match=r"b:1 merges the clock of a:2, which is not in the session"):
        CausalIndex([a1, Span(node="b", seq=1, kind=SpanKind.RECV, name="m", merged="a:2")])
    cycle = [Span(node="a", seq=1, kind=SpanKind.RECV, name="m", merged="b:1"),
             Span(node="b", seq=1, kind=SpanKind.RECV, name="m", merged="a:1")]
    with pytest.raises(UsageError, match="a cycle of references"):
        CausalIndex(cycle)
    with pytest.raises(UsageError, match="its own node"):
        CausalIndex([a1, Span(node="a", seq=2, kind=SpanKind.RECV, name="m", merged="a:1")])
    lenient = CausalIndex(cycle, lenient=True)
    assert sorted(lenient.unresolved) == ["a:1"] or sorted(lenient.unresolved) == ["b:1"]
    assert lenient.happens_before("a:1", "b:1") != lenient.happens_before("b:1", "a:1")


def _session(tmp_path, spans, name="s.ets"):
    path = tmp_path / name
    with SessionWriter(path, Manifest(session_id="refs", app="test")) as w:
        for i in range(0, len(spans), 7):
            w.append(spans[i:i + 7])
        w.seal()
    return path


@given(histories())
def test_compaction_stores_receives_by_reference_and_keeps_every_clock(tmp_path_factory, history):
    spans, full = history
    path = _session(tmp_path_factory.mktemp("c"), spans)
    compact(path, records_per_frame=5)
    session = Session(path)
    assert [(s.node, s.seq, s.kind, s.cause, s.attrs) for s in session.spans] == \
           [(s.node, s.seq, s.kind, s.cause, s.attrs) for s in spans]
    for span in spans:
        assert session.index.clock(span) == full[span.ref]
    merged = [s for s in session.spans if s.merged]
    assert session.version == (CLOCK_REF_VERSION if merged else FORMAT_VERSION)
    assert all(s.merged == s.cause for s in merged)
    compact(path)  # again: references are followed, clocks unchanged
    assert all(Session(path).index.clock(s) == full[s.ref] for s in spans)


def test_a_mesh_compacts_to_a_fraction_and_without_references_as_before(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from _synth import synth_spans

    spans = list(synth_spans(3000, 40, topology="mesh", seed=5))
    with_refs, without = _session(tmp_path, spans, "a.ets"), _session(tmp_path, spans, "b.ets")
    compact(with_refs)
    compact(without, references=False)
    assert with_refs.stat().st_size < 0.8 * without.stat().st_size
    a, b = Session(with_refs), Session(without)
    assert sum(len(s.vc) for s in a.spans) < 0.1 * sum(len(s.vc) for s in b.spans)
    assert (a.version, b.version) == (CLOCK_REF_VERSION, FORMAT_VERSION)
    assert not any(s.merged for s in b.spans)
    assert all(a.index.clock(s) == b.index.clock(s) for s in spans[::3])


def test_a_session_whose_reference_does_not_resolve_is_corrupt_unless_salvaged(tmp_path):
    spans = [Span(node="a", seq=1, kind=SpanKind.SEND, name="m"),
             Span(node="b", seq=1, kind=SpanKind.RECV, name="m", cause="a:1", merged="a:9")]
    path = _session(tmp_path, spans)
    with pytest.raises(CorruptSessionError, match="merges the clock of a:9"):
        Session(path).index  # noqa: B018
    salvaged = Session(path, salvage=True)
    assert salvaged.index.unresolved == ["b:1"]


@pytest.mark.parametrize("verb", [["show"], ["show", "--json"], ["show", "--cuts"], ["diff", "SELF"]])
def test_a_reference_that_does_not_resolve_is_one_line_exit_2_in_every_reader(tmp_path, verb):
    import subprocess
    import sys

    spans = [Span(node="a", seq=1, kind=SpanKind.SEND, name="m", trace="t"),
             Span(node="b", seq=1, kind=SpanKind.RECV, name="m", trace="t", cause="a:1", merged="a:1"),
             Span(node="b", seq=2, kind=SpanKind.RECV, name="m", trace="t", cause="a:1", merged="c:4")]
    path = _session(tmp_path, spans)
    args = [str(path) if a == "SELF" else a for a in verb[1:]]
    r = subprocess.run([sys.executable, "-m", "edgetrace", verb[0], str(path), *args], capture_output=True,
                       text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "merges the clock of c:4" in r.stderr, r.stderr
    salvaged = subprocess.run([sys.executable, "-m", "edgetrace", "show", str(path), "--salvage"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert salvaged.returncode == 0, salvaged.stderr


@st.composite
def hostile_streams(draw):
    """Records with references anywhere: missing, to themselves, in cycles, to gaps, repeated."""
    nodes = ["a", "b", "c"]
    spans = []
    for node in nodes:
        for seq in range(1, draw(st.integers(0, 6)) + 1):
            merged = draw(st.one_of(st.just(""), st.builds(lambda n, s: f"{n}:{s}", st.sampled_from([*nodes, "zz"]),
                                                           st.integers(1, 8))))
            vc = draw(st.dictionaries(st.sampled_from([*nodes, "zz"]),
                                      st.one_of(st.integers(0, 50), st.integers(2**40, 2**63 - 1)), max_size=3))
            spans.append(Span(node=node, seq=seq, kind=SpanKind.RECV, name="m", vc=vc, merged=merged))
    if spans and draw(st.booleans()):
        spans.append(draw(st.sampled_from(spans)))  # a repeat
    return draw(st.permutations(spans))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_streams())
def test_any_references_resolve_or_are_one_clear_error(rows, spans):
    try:
        index = CausalIndex(spans)
    except UsageError as exc:
        assert "merges the clock of" in str(exc) or "clock reference" in str(exc), exc
        lenient = CausalIndex(spans, lenient=True)  # a salvaged read always opens
        assert lenient.unresolved
        return
    for span in spans:
        clock = index.clock(span)
        assert clock[span.node] == span.seq
        if span.merged:  # what it merged is in its past, unless vc set the entry lower on purpose
            node = span.merged.rpartition(":")[0]
            assert index.happens_before(span.merged, span) or node in span.vc


@given(hostile_streams())
def test_compacting_any_session_keeps_its_clocks_or_refuses_and_leaves_it_untouched(tmp_path_factory, spans):
    path = _session(tmp_path_factory.mktemp("h"), list(spans))
    before = path.read_bytes()
    try:
        expected = {s.ref: Session(path).index.clock(s) for s in spans}
    except CorruptSessionError:
        expected = None
    try:
        compact(path)
    except (UsageError, CorruptSessionError):
        assert path.read_bytes() == before
        return
    if expected is not None:
        after = Session(path).index
        assert all(after.clock(s) == expected[s.ref] for s in spans)


def test_compaction_tells_its_progress_through_both_passes(tmp_path):
    spans = [Span(node="a", seq=s, kind=SpanKind.LOG, name="x") for s in range(1, 60)]
    path = _session(tmp_path, spans)
    seen = []
    compact(path, progress=lambda done, total: seen.append((done, total)))
    total = seen[-1][1]
    assert seen[-1] == (total, total) and len(seen) > 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # never goes back
    assert any(d > total // 2 for d, _ in seen[:-1])  # the second pass is counted after the first


native = pytest.mark.skipif(_index._cindex is None,
                            reason="the C extension is not built here (python setup.py build_ext --inplace)")


@native
@given(histories(), st.randoms(use_true_random=False), st.booleans())
def test_the_c_build_is_the_python_build(history, rng, refs):
    """Delta clocks or clocks by reference, in any order: the C build leaves every stream as the
    Python build does, and takes these plain sessions itself (it does not decline them)."""
    from test_index import built

    from edgetrace import _cindex, _clockref

    spans, full = history
    items = by_reference(spans, full) if refs else list(spans)
    rng.shuffle(items)
    assert built(items, native=True) == built(items, native=False)
    codes = _clockref.Codes()
    assert _cindex.build(items, codes, codes.names, _clockref.DENSE_CELLS) is not None


@native
@given(hostile_streams())
def test_the_c_build_declines_what_it_is_not_sure_of(spans):
    """Missing targets, references to themselves, cycles, repeats, values past 32 bits: the C
    build declines (the Python build then builds or raises its usual error), or, where the mix
    happens to be plain, builds what the Python build does."""
    from test_index import built

    assert built(list(spans), native=True) == built(list(spans), native=False)
