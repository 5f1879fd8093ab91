"""The causal index answers happens-before exactly as full vector clocks would."""

from __future__ import annotations

import clock_histories  # tests/core/clock_histories.py (pytest puts this folder on sys.path)
from hypothesis import given
from hypothesis import strategies as st

from edgetrace import CausalIndex
from edgetrace._records import SpanKind
from edgetrace.agents import MemorySink, Recorder

NODES = ["a", "b", "c"]


def histories():
    """Three recorders; a message may go to its own sender."""
    return clock_histories.histories(NODES, steps=40, actions=["local", "send", "recv"], self_sends=True)


@given(histories())
def test_index_matches_full_clocks(history):
    spans, full = history
    index = CausalIndex(spans)
    for a in spans:
        assert index.clock(a) == full[a.ref]
        for b in spans:
            expected = full[a.ref].happens_before(full[b.ref])
            assert index.happens_before(a, b) == expected, (a.ref, b.ref)
            assert index.concurrent(a, b) == (a.ref != b.ref and full[a.ref].concurrent(full[b.ref]))


@given(histories())
def test_causal_past_and_future_are_exact(history):
    spans, full = history
    index = CausalIndex(spans)
    for a in spans:
        past = {s.ref for s in index.causal_past(a)}
        future = {s.ref for s in index.causal_future(a)}
        assert past == {b.ref for b in spans if full[b.ref].happens_before(full[a.ref])}
        assert future == {b.ref for b in spans if full[a.ref].happens_before(full[b.ref])}


@given(histories())
def test_causal_sort_is_a_linear_extension(history):
    spans, full = history
    order = CausalIndex(spans).causal_sort(spans)
    position = {s.ref: i for i, s in enumerate(order)}
    for a in spans:
        for b in spans:
            if full[a.ref].happens_before(full[b.ref]):
                assert position[a.ref] < position[b.ref]


def test_duplicate_records_are_ignored():
    sink = MemorySink()
    rec = Recorder("a", sink)
    rec.record(SpanKind.LOG, "x")
    index = CausalIndex([*sink.spans, *sink.spans])
    assert index.clock("a:1")["a"] == 1


def test_happens_before_takes_spans_and_refs_and_refuses_bad_refs():
    import pytest

    from edgetrace import CausalIndex, Span, SpanKind, UsageError

    a1 = Span(node="a", seq=1, kind=SpanKind.SEND, name="m")
    b1 = Span(node="b", seq=1, kind=SpanKind.RECV, name="m", vc={"a": 1}, cause="a:1")
    index = CausalIndex([a1, b1])
    assert index.happens_before(a1, b1) and index.happens_before("a:1", "b:1")
    assert index.happens_before(a1, "b:1") and not index.happens_before("b:1", a1)
    for bad in ("a", "a:x", ":1", ""):
        with pytest.raises(UsageError):
            index.happens_before(bad, "b:1")


def _state(index):
    return {node: (s.seqs, [x.ref for x in s.spans], s.sums, s.total, s.clock,
                   {k: (list(s.ch_seq[lo:hi]), list(s.ch_val[lo:hi])) for k, (lo, hi) in s.at.items()})
            for node, s in index._streams.items()}


@st.composite
def batches(draw):
    """Spans with arbitrary delta clocks (large values too), cut into the batches `extend` gets."""
    from edgetrace._records import Span

    nodes = draw(st.lists(st.sampled_from(["a", "b", "c", "dd", "e"]), min_size=1, max_size=4, unique=True))
    spans = []
    for node in nodes:
        for seq in range(1, draw(st.integers(1, 12)) + 1):
            vc = draw(st.dictionaries(st.sampled_from(["a", "b", "c", "dd", "e", "zz"]),
                                      st.one_of(st.integers(0, 40), st.integers(0, 2**63 - 1)), max_size=4))
            spans.append(Span(node=node, seq=seq, kind=SpanKind.LOG, name="x", vc=vc))
    spans = draw(st.permutations(spans)) if draw(st.booleans()) else spans
    cuts = sorted(draw(st.lists(st.integers(0, len(spans)), max_size=3)))
    return [spans[a:b] for a, b in zip([0, *cuts], [*cuts, len(spans)], strict=True)]


@given(batches())
def test_the_packed_build_is_the_record_at_a_time_build(cut):
    """The numpy build of the change points equals the definition, record by record."""
    from edgetrace import _index
    from edgetrace._errors import UsageError

    def build(packed):
        index = CausalIndex()
        original, native = _index._Stream._packed, _index._cindex
        _index._cindex = None  # the Python paths (the C build is checked against them below)
        if not packed:
            _index._Stream._packed = lambda self, items, codes, names, expanded: False
        try:
            for batch in cut:
                index.extend(batch)
        except UsageError as exc:
            return str(exc)
        finally:
            _index._Stream._packed, _index._cindex = original, native
        return _state(index)

    assert build(True) == build(False)


def test_a_wide_clock_keeps_later_batches_off_the_packed_path():
    """A 63-bit entry taken record at a time, then small ones: the running sum passes 64 bits.

    The packed path once summed them in int64 and wrapped (or raised OverflowError) — found by
    the property above on CI; this is its shrunk case, pinned.
    """
    from edgetrace._records import Span

    big = 2**63 - 10
    first = [Span(node="a", seq=s, kind=SpanKind.LOG, name="x") for s in range(1, 9)]
    first.append(Span(node="a", seq=9, kind=SpanKind.LOG, name="x", vc={"a": 0, "b": big}))
    second = [Span(node="a", seq=10, kind=SpanKind.LOG, name="x", vc={"a": 0})]
    index = CausalIndex()
    index.extend(first)
    index.extend(second)
    stream = index._streams["a"]
    assert stream.sums[-2:] == [big + 9, big + 10]
    assert index.clock("a:10")["b"] == big


def built(spans, native):  # type: ignore[no-untyped-def]
    """The index's streams as `_state` gives them, built in C (`native`) or in Python, or the error."""
    from edgetrace import _index
    from edgetrace._errors import UsageError

    saved = _index._cindex
    if not native:
        _index._cindex = None
    try:
        return _state(CausalIndex(spans))
    except UsageError as exc:
        return str(exc)
    finally:
        _index._cindex = saved


@given(batches())
def test_the_c_build_of_a_whole_session_is_the_python_build(cut):
    """Arbitrary delta clocks, large values and repeats too, read whole: the same streams."""
    spans = [s for batch in cut for s in batch]
    assert built(spans, native=True) == built(spans, native=False)


def test_seqs_and_clock_values_past_32_bits_build_alike():
    """A send's seq becomes its receiver's clock entry: past 32 bits the C build declines (its
    rows are 32-bit), and the Python build takes it."""
    from edgetrace._records import Span

    big = 2**31 + 5
    spans = [Span(node="a", seq=big, kind=SpanKind.SEND, name="m"),
             Span(node="b", seq=1, kind=SpanKind.RECV, name="m", merged=f"a:{big}"),
             Span(node="b", seq=2, kind=SpanKind.RECV, name="m", vc={"a": big + 1, "c": 7})]
    assert built(spans, native=True) == built(spans, native=False)
    assert CausalIndex(spans).clock("b:1").as_dict() == {"a": big, "b": 1}


@given(histories(), st.lists(st.sampled_from(["a:007", "a:1x", ":1", "zz:3", "b:99999", "c:0", "a:",
                                             "a:1:2", "b:" + "9" * 19, "é:1", "a:١"]), max_size=4))
def test_the_c_query_answers_as_the_python_query(history, odd):
    """Refs and spans, known and unknown nodes, seqs past a stream's end, forms the C query does
    not read (it says None, and the Python query answers or raises its usual error)."""
    from edgetrace import _cindex, _index
    from edgetrace._errors import UsageError

    if _cindex is None:
        return
    spans, _full = history
    index = CausalIndex(spans)
    query = _cindex.query(index._streams, index._codes, _index.QUERY_CELLS)
    assert query is not None
    refs = [s.ref for s in spans] + odd
    for a in refs:
        for b in refs[::3]:
            try:
                expected: bool | None = index._happens_before(a, b)
            except UsageError:
                expected = None
            got = query.happens_before(a, b)
            assert got == expected or (got is None and (a in odd or b in odd)), (a, b, got, expected)
    for a in spans:
        for b in spans:
            assert query.happens_before_at(a.node, a.seq, b.node, b.seq) == index._happens_before(a, b)


def test_the_query_table_is_built_once_asked_enough_and_dropped_when_the_index_grows():
    from edgetrace import _index
    from edgetrace._records import Span

    a = [Span(node="a", seq=i, kind=SpanKind.SEND, name="m") for i in range(1, 4)]
    b1 = Span(node="b", seq=1, kind=SpanKind.RECV, name="m", vc={"a": 1})
    index = CausalIndex([*a, b1])
    for _ in range(_index.QUERY_AFTER + 1):
        assert index.happens_before("a:1", "b:1") and not index.happens_before("a:2", "b:1")
    assert (index._query is not None) == (_index._cindex is not None)
    import pickle

    copy = pickle.loads(pickle.dumps(index))  # the table stays behind: it is this process's memory
    assert copy._query is None and copy.happens_before("a:1", "b:1") and not copy.happens_before("a:2", "b:1")
    index.extend([Span(node="b", seq=2, kind=SpanKind.RECV, name="m", vc={"a": 3})])
    assert index._query is None
    for _ in range(_index.QUERY_AFTER + 1):
        assert index.happens_before("a:2", "b:2") and index.happens_before("a:3", "b:2")
    assert not index.happens_before("b:2", "a:3")
