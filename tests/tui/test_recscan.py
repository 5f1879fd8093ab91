"""The C walk of a records frame (`edgetrace._recscan`, via `extract_body`) is a fast path of
`extract(decode_slim_spans(body))`, never a second definition.

Whatever body it takes — well formed, hostile, torn — it either declines (None: the caller
decodes the ordinary way, which accepts or refuses with its own message) or gives exactly the
columns the ordinary path gives, leaving the interned tables exactly as that path leaves them.
It must also take the plain case: a fast path that always declined would pass the rest.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from dataclasses import fields
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edgetrace import Manifest, SessionWriter, Span, SpanKind, Status
from edgetrace._codec import encode_spans
from edgetrace._errors import CorruptSessionError
from edgetrace.tui import _span_columns
from edgetrace.tui._slim_span import decode_slim_spans
from edgetrace.tui._span_columns import FrameSpans, extract, extract_body
from edgetrace.tui._strings import AttrsArena, Strings

native = pytest.mark.skipif(not _span_columns.NATIVE,
                            reason="the C extension is not built here (python setup.py build_ext --inplace)")


def test_the_extension_is_built_where_it_can_be():
    """Under CI, on a machine with a C compiler and Python's headers (.ci/run installs them), the
    optional extensions must have been built: a build that fell back silently would leave only
    the Python path tested, and every `native` test skipped."""
    if not os.environ.get("CI"):
        pytest.skip("checked under CI")
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    headers = Path(sysconfig.get_paths()["include"], "Python.h").exists()
    if not (compiler and headers):
        pytest.skip("no C compiler or Python headers here: the Python path is what is installed")
    assert _span_columns.NATIVE, "edgetrace._recscan was not built (setup.py's optional extension)"
    from edgetrace import _index

    assert _index._cindex is not None, "edgetrace._cindex was not built (setup.py's optional extension)"


def tables(seed: list[str] = ()) -> tuple[Strings, Strings, AttrsArena]:
    nodes, strings = Strings(), Strings()
    for name in seed:  # tables that already hold some names, as after earlier frames
        nodes.code(name)
        strings.code(name)
    return nodes, strings, AttrsArena()


def state(nodes: Strings, strings: Strings, arena: AttrsArena) -> Any:
    return nodes.text, strings.text, arena.raw, arena.full


def ordinary(body: bytes, seed: list[str]) -> tuple[Any, Any]:
    """The ordinary path's columns (or its refusal) and the tables it leaves."""
    t = tables(seed)
    try:
        got: Any = extract(decode_slim_spans(body), *t, "frame")
    except (msgspec.DecodeError, msgspec.ValidationError, CorruptSessionError) as exc:
        got = type(exc)
    return got, state(*t)


def same(a: FrameSpans, b: FrameSpans) -> None:
    assert a.trace_bytes is not None and b.trace_bytes is None  # the C walk hands over the ids' bytes too
    blob, lens = a.trace_bytes
    encoded = [t.encode("utf-8", "surrogatepass") for t in b.traces]
    assert bytes(blob) == b"".join(encoded) and lens.tolist() == [len(e) for e in encoded]
    for f in fields(FrameSpans):
        if f.name == "trace_bytes":
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, tuple):
            for u, v in zip(x, y, strict=True):
                assert u.dtype == v.dtype and np.array_equal(u, v), f.name
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def check(body: bytes, seed: list[str] = (), *, must_take: bool = False) -> FrameSpans | None:
    expected, tables_after = ordinary(body, list(seed))
    t = tables(list(seed))
    fast = extract_body(body, *t)
    if fast is None:
        assert not must_take, "the C walk declined a plain well-formed frame"
        assert state(*t) == state(*tables(list(seed))), "declining must leave the tables as they were"
        return None
    assert isinstance(expected, FrameSpans), f"the C walk took a body the ordinary path refuses ({expected})"
    same(fast, expected)
    assert state(*t) == tables_after
    return fast


# --- records as the runtime writes them, and as an old or hostile writer might -----------

names = st.sampled_from(["n1", "node-0001", "hub", "t:1", "ü", "gw:x", ""]) | st.text(max_size=12)
refs = st.one_of(
    st.just(""),
    st.builds(lambda n, s: f"{n}:{s}", names, st.integers(0, 2**33)),
    st.sampled_from([":5", "a:", "a:01", "a:4294967295", "a:4294967296", "a:12345678901", "a:1:2", "a:٣", "x"]),
    st.text(max_size=10),
)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=6) | st.binary(max_size=6)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                      max_leaves=8)
kinds = st.sampled_from([k.value for k in SpanKind]) | st.sampled_from(["nope", ""])
statuses = st.sampled_from(["ok", "error"]) | st.sampled_from(["bad"])


@st.composite
def record(draw: Any) -> list[Any]:
    fields_ = [
        draw(names), draw(st.integers(1, 2**32 - 1) | st.integers(-5, 2**64 - 1)), draw(kinds), draw(names),
        draw(st.sampled_from(["tr-1", "tr-2", ""]) | st.text(max_size=5)), draw(refs), draw(refs),
        draw(st.integers(-(2**62), 2**62) | st.integers(-(2**63), 2**64 - 1)),
        draw(st.integers(0, 10**12)),
        draw(st.dictionaries(names, st.integers(0, 2**40), max_size=4) | values),
        draw(st.dictionaries(st.text(max_size=6), values, max_size=3) | values),
        draw(statuses), draw(st.sampled_from(["", "timeout after 2s", "boom"]) | st.text(max_size=5)),
    ]
    keep = draw(st.integers(3, 13))
    extra = draw(st.lists(values, max_size=2))  # fields of a later format the explorer skips
    return fields_[:keep] + (extra if keep == 13 else [])


@native
@given(st.lists(record(), max_size=12), st.lists(names, max_size=3))
def test_the_c_walk_gives_the_ordinary_columns_or_declines(records, seed):
    check(msgspec.msgpack.encode(records), seed)


spans = st.builds(
    Span,
    node=st.sampled_from(["a", "b", "node-0001", "ü-gw"]), seq=st.integers(1, 2**32 - 1),
    kind=st.sampled_from(list(SpanKind)), name=st.text(max_size=8),
    trace=st.text(max_size=6), parent=refs, cause=refs,
    start=st.integers(-(2**62), 2**62), end=st.integers(-(2**62), 2**62),
    vc=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 2**63 - 1), max_size=3),
    attrs=st.dictionaries(st.sampled_from(["edgetrace.decision", "x", "edgetrace.timed_out"]),
                          st.sampled_from(["spray", 1, 2.5, True, None, ["a"], {"k": 1}]), max_size=3),
    status=st.sampled_from(list(Status)),
    error=st.sampled_from(["", "timeout after 1s", "boom"]),
    blobs=st.dictionaries(st.sampled_from(["in", "out"]), st.just("ab" * 32), max_size=1),
)


@native
@given(st.lists(spans, max_size=20))
def test_the_c_walk_takes_every_frame_the_runtime_writes(items):
    """Records of valid spans (NUL-free refs) are the plain case: the fast path must take them."""
    assume(not any("\x00" in s.cause or "\x00" in s.parent for s in items))
    check(encode_spans(items), must_take=True)


@native
@given(st.lists(spans, min_size=1, max_size=6), st.data())
def test_a_damaged_body_is_declined_or_read_as_msgspec_reads_it(items, data):
    body = bytearray(encode_spans(items))
    for _ in range(data.draw(st.integers(1, 4))):
        how = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, len(body) - 1)) if body else 0
        if how == "flip" and body:
            body[at] = data.draw(st.integers(0, 255))
        elif how == "cut":
            del body[at:]
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=5))
    check(bytes(body))


@native
@pytest.mark.parametrize("body", [
    b"", b"\x90", b"\xc1", b"\x91", b"\x91\x94", b"\xdd\xff\xff\xff\xff", b"\x91\x94\xa1a\x01\xa5infer\xa1x\x00",
    b"\x91\x94\xa1a\x00\xa5infer\xa1x",  # seq 0: outside Seq
    b"\x91\x9b\xa1a\x01\xa5infer\xa1x\xa0\xa0\xa0\x00\x00\x80\x81\xa1k\xd4\x01\x00",  # an ext value in attrs
    b"\x91\x9b\xa1a\x01\xa5infer\xa1x\xa0\xa0\xa0\x00\x00\x80" + b"\x91" * 40 + b"\x80",  # deep nesting
    b"\x91\x95\xa1a\x01\xa5infer\xa1x\xa3\xed\xa0\x80",  # a surrogate in a trace id
])
def test_hostile_bodies(body):
    check(body)


def scanned(path, monkeypatch, *, fast: bool) -> Any:
    from edgetrace.tui._store import TraceStore

    with monkeypatch.context() as m:
        if not fast:
            m.setattr(_span_columns, "_recscan", None)
        store = TraceStore(path)
        store.scan()
    table = store.table
    columns = {name: np.array(getattr(table.spans, name)[: table.span_count]) for name in table.spans.SPEC}
    rows = {name: np.array(getattr(table.columns, name)[: table.count]) for name in table.columns.SPEC}
    return (columns, rows, table.nodes.text, table.names.text, table.arena.raw, table.more_acts,
            [vars_of(r) for r in store.rows])


def vars_of(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in row.__slots__}


@native
def test_a_session_scans_alike_with_and_without_the_c_walk(tmp_path, monkeypatch):
    """The whole table a scan builds (columns, rows, interned strings) is the same either way,
    on a session of many frames whose traces, causes and decisions cross frame boundaries."""
    import random

    rng = random.Random(5)
    path = tmp_path / "s.ets"
    seqs: dict[str, int] = {}
    sent: list[str] = []
    with SessionWriter(path, Manifest(app="x")) as w:
        for frame in range(12):
            batch = []
            for _ in range(rng.randint(1, 60)):
                node = rng.choice(["hub", "tractor-1", "tractor-2", "drone"])
                seqs[node] = seqs.get(node, 0) + 1
                kind = rng.choice(list(SpanKind))
                attrs: dict[str, Any] = {}
                if kind is SpanKind.DECIDE:
                    attrs = {"edgetrace.decision": rng.choice(["spray", "hold"]),
                             "edgetrace.timed_out": rng.random() < 0.3}
                failed = rng.random() < 0.2
                span = Span(node=node, seq=seqs[node], kind=kind, name=rng.choice(["infer", "rule", "spray", "state.get"]),
                            trace=f"tr-{rng.randint(0, 30)}", cause=rng.choice(sent) if sent and rng.random() < 0.5 else "",
                            parent=rng.choice(sent) if sent and rng.random() < 0.3 else "",
                            start=frame * 1000 + rng.randint(0, 999), end=frame * 1000 + 1000 + rng.randint(0, 999),
                            attrs=attrs, status=Status.ERROR if failed else Status.OK,
                            error=rng.choice(["timeout after 2s", "boom"]) if failed else "")
                batch.append(span)
                sent.append(span.ref)
            w.append(batch)
    fast, slow = scanned(path, monkeypatch, fast=True), scanned(path, monkeypatch, fast=False)
    for a, b in zip(fast[:2], slow[:2], strict=True):
        assert a.keys() == b.keys()
        for name in a:
            assert np.array_equal(a[name], b[name]), name
    assert fast[2:] == slow[2:]


# --- the C trace index: trace id -> row, against a dict ------------------------------------

class Stored:
    """The trace table's side of the C index: the ids' bytes and offsets, as `TraceTable` keeps them."""

    def __init__(self) -> None:
        self.ids = bytearray()
        self.off = [0]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.frombuffer(bytes(self.ids) or b"\0", np.uint8), np.array(self.off, np.uint64)

    def frame(self, table: Any, traces: list[bytes]) -> list[int]:
        ids, off = self.arrays()
        lens = np.array([len(t) for t in traces], np.int32)
        rows_b, fresh_b = table.rows(b"".join(traces), lens, ids, off, len(self.off) - 1)
        rows, fresh = np.frombuffer(rows_b, np.int64).tolist(), np.frombuffer(fresh_b, np.bool_).tolist()
        for t, is_new in zip(traces, fresh, strict=True):
            if is_new:
                self.ids += t
                self.off.append(len(self.ids))
        return rows


@native
@given(st.lists(st.lists(st.binary(max_size=4) | st.sampled_from([b"", b"t-1", "ü".encode()]), max_size=30),
                max_size=12))
def test_the_c_trace_index_numbers_traces_as_a_dict_does(frames):
    """Per call (a frame, or a run of frames absorbed at once) an id may come more than once:
    it gets one row, the row of its first coming."""
    from edgetrace import _recscan

    table, stored, model = _recscan.TraceTable(), Stored(), {}
    for traces in frames:
        expected = [model.setdefault(t, len(model)) for t in traces]
        assert stored.frame(table, traces) == expected
    ids, off = stored.arrays()
    for t, row in model.items():
        assert table.find(t, ids, off, len(model)) == row
        assert table.find(t, ids, off, row) == -1  # rows at or past the limit are not stored yet
    assert table.find(b"never-seen", ids, off, len(model)) == -1
    assert len(table) == len(model)


@native
def test_the_c_trace_index_grows_and_never_merges_traces():
    """300,000 ids: the table rehashes many times, and 32-bit tags collide (checked on bytes)."""
    from edgetrace import _recscan

    table, stored = _recscan.TraceTable(), Stored()
    ids = [f"t{i:08x}".encode() for i in range(300_000)]
    for a in range(0, len(ids), 1000):
        assert stored.frame(table, ids[a:a + 1000]) == list(range(a, a + 1000))
    assert stored.frame(table, ids[::997]) == list(range(0, 300_000, 997))  # all known
    ids_arr, off = stored.arrays()
    for i in range(0, len(ids), 331):
        assert table.find(ids[i], ids_arr, off, len(ids)) == i


@native
def test_the_c_trace_index_refuses_what_does_not_describe_a_frame():
    from edgetrace import _recscan

    table, stored = _recscan.TraceTable(), Stored()
    stored.frame(table, [b"a", b"bb"])
    ids, off = stored.arrays()
    with pytest.raises(ValueError):
        table.rows(b"abc", np.array([1, 1], np.int32), ids, off, 2)  # lengths that do not add up
    with pytest.raises(ValueError):
        table.rows(b"a", np.array([-1, 2], np.int32), ids, off, 2)
    # offsets that do not describe stored bytes are never read: no match, no crash
    bad = np.array([0, 10**12, 3], np.uint64)
    assert table.find(b"a", ids, bad, 2) == -1 and table.find(b"bb", ids, bad, 2) == -1
    assert table.find(b"a", ids, off, 10**9) == 0  # a limit past the offsets: only stored rows count
    with pytest.raises(TypeError):
        _recscan.TraceTable(1)
    with pytest.raises(OverflowError):  # row numbers have 27 bits
        table.rows(b"c", np.array([1], np.int32), ids, off, 2**27 - 2)


@native
def test_past_the_trace_limit_the_explorer_refuses_in_one_line():
    from edgetrace.tui._trace_index import NativeTraceIndex

    ids, off = np.zeros(1, np.uint8), np.zeros(1, np.uint64)
    index = NativeTraceIndex(lambda: (ids, off, 0))
    with pytest.raises(CorruptSessionError, match="more than 134,217,726 traces, more than the explorer can show"):
        index.rows_for(["t"], np.frombuffer(b"t", np.uint8), np.array([1]), 2**27 - 2)


def _table_state(store: Any) -> Any:
    table = store.table
    columns = {name: np.array(getattr(table.spans, name)[: table.span_count]) for name in table.spans.SPEC}
    rows = {name: np.array(getattr(table.columns, name)[: table.count]) for name in table.columns.SPEC}
    refs = table.refs
    return (columns, rows, table.nodes.text, table.names.text, table.arena.raw, table.more_acts,
            table.frame_first, table.frame_at, table.t_min, refs.link_keys.tolist(), refs.link_count.tolist(),
            refs.link_least.tolist(), sorted(refs.pending.tolist()), [vars_of(r) for r in store.rows])


@native
@given(st.integers(0, 2**32), st.sampled_from([1, 50, 8192]))
def test_frames_absorbed_in_runs_leave_the_tables_as_one_by_one(tmp_path_factory, seed, run_spans):
    """Causes that point forward as well as back (a hub stores batches as they come), traces and
    new strings that recur across the frames of one run, empty frames: a run absorbed at once
    ends as the frames absorbed in turn (causes found later are found by `refs.retry`)."""
    import random

    from edgetrace.tui import _store

    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(rng.randint(1, 6))]
    seqs = dict.fromkeys(nodes, 0)
    frames: list[list[Span]] = []
    for _ in range(rng.randint(1, 10)):
        batch = []
        for _ in range(rng.choice([0, 1, rng.randint(1, 40)])):
            node = rng.choice(nodes)
            seqs[node] += 1
            batch.append((node, seqs[node]))
        frames.append(batch)
    refs = [f"{n}:{s}" for batch in frames for n, s in batch] + ["ghost:3", ""]
    path = tmp_path_factory.mktemp("runs") / "s.ets"
    with SessionWriter(path, Manifest(app="x")) as w:
        for f, batch in enumerate(frames):
            spans = []
            for node, seq in batch:
                kind = rng.choice(list(SpanKind))
                attrs: dict[str, Any] = {}
                if kind is SpanKind.DECIDE:
                    attrs = {"edgetrace.decision": rng.choice(["spray", "hold", f"d{rng.randint(0, 3)}"])}
                failed = rng.random() < 0.2
                spans.append(Span(node=node, seq=seq, kind=kind, name=rng.choice(["infer", "act", f"x{f}"]),
                                  trace=f"tr-{rng.randint(0, 12)}", cause=rng.choice(refs), parent=rng.choice(refs),
                                  start=rng.randint(0, 10**6), end=rng.randint(0, 10**6) + 10**6, attrs=attrs,
                                  status=Status.ERROR if failed else Status.OK,
                                  error=rng.choice(["timeout after 2s", "boom"]) if failed else ""))
            w.append(spans)
    states = []
    for size in (0, run_spans):  # 0: every frame a run of its own
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_store, "RUN_SPANS", size)
            store = _store.TraceStore(path)
            store.scan()
            states.append(_table_state(store))
    one_by_one, in_runs = states
    for a, b in zip(one_by_one[:2], in_runs[:2], strict=True):
        assert a.keys() == b.keys()
        for name in a:
            assert np.array_equal(a[name], b[name]), name
    assert one_by_one[2:] == in_runs[2:]


@native
def test_a_frame_refused_inside_a_run_is_the_one_reported_or_salvaged(tmp_path, monkeypatch):
    """Absorbing a run can fail only as absorbing one of its frames would (the trace index
    refuses it); the run is then absorbed frame by frame, so the error or the salvage names
    that frame and keeps the others."""
    from edgetrace._frames import FILE_HEADER_SIZE, FrameType, ScanResult, scan_frames
    from edgetrace.tui import _store

    path = tmp_path / "s.ets"
    with SessionWriter(path, Manifest(app="x")) as w:
        for f in range(6):
            w.append([Span(node="a", seq=f * 3 + i + 1, kind=SpanKind.LOG, name="s",
                           trace="poison" if (f, i) == (3, 1) else f"t{f}{i}") for i in range(3)])
    offsets = [fr.offset for fr in scan_frames(path.read_bytes(), FILE_HEADER_SIZE, path=path)
               if not isinstance(fr, ScanResult) and fr.type is FrameType.RECORDS]

    def opened(salvage: bool) -> Any:
        store = _store.TraceStore(path, salvage=salvage)
        rows_for = store.table.index.rows_for

        def refusing(traces: list[str], *args: Any) -> Any:
            if "poison" in traces:
                raise CorruptSessionError("more than 134,217,726 traces, more than the explorer can show")
            return rows_for(traces, *args)

        monkeypatch.setattr(store.table.index, "rows_for", refusing)
        return store

    monkeypatch.setattr(_store, "RUN_SPANS", 10_000)
    store = opened(salvage=True)
    store.scan()
    assert [d.offset for d in store.damage] == [offsets[3]]
    assert store.span_count == 15 and store.at_end
    assert sorted(r.trace for r in store.rows) == sorted(f"t{f}{i}" for f in range(6) for i in range(3) if f != 3)
    with pytest.raises(CorruptSessionError, match=f"offset {offsets[3]}|more than 134,217,726") as err:
        opened(salvage=False).scan()
    assert err.value.offset == offsets[3]


def _colliding_words(count: int, bits: int, seed: int = 1) -> list[bytes]:
    """Eight-byte ASCII words whose unkeyed walk hash (`quick_hash` in _recscan.c) agrees in
    its low `bits` bits: what a hostile file would hold to pile every string onto one slot."""
    mask = np.uint64((1 << bits) - 1)
    rng = np.random.default_rng(seed)
    found: list[bytes] = []
    with np.errstate(over="ignore"):
        while len(found) < count:
            raw = rng.integers(0x61, 0x7B, size=(1 << 22, 8), dtype=np.uint8)  # a-z
            w = raw.view("<u8").ravel()
            h = (np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(8) ^ w) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(29)
            found += [bytes(r) for r in raw[(h & mask) == 0]]
    return list(dict.fromkeys(found))[:count]


@native
def test_strings_chosen_to_collide_make_the_walk_decline_not_crawl():
    """The walk's per-frame interner hashes without a key (it is the hot loop): a frame whose
    strings all fall on one slot would make each lookup walk all of them. After MAX_PROBES
    slots the walk declines instead, and the ordinary decode (Python's keyed dicts) reads the
    frame, so a hostile frame costs a bounded number of steps a string and reads the same."""
    from edgetrace import _recscan

    names = [w.decode() for w in _colliding_words(600, 13)]
    spans = [Span(node="n", seq=i + 1, kind=SpanKind.LOG, name=name, trace=f"t{i % 7}")
             for i, name in enumerate(names)]
    hostile = encode_spans(spans)
    assert _recscan.columns(hostile) is None
    check(hostile)  # the ordinary path reads it
    benign = encode_spans([Span(node="n", seq=i + 1, kind=SpanKind.LOG, name=f"name-{i:05d}", trace=f"t{i % 7}")
                           for i in range(600)])
    assert _recscan.columns(benign) is not None


@native
def test_trace_ids_chosen_to_collide_cost_the_trace_table_no_more(tmp_path):
    """The trace table lives as long as the session is open and cannot decline: it hashes with
    SipHash keyed per process, so ids chosen against any fixed hash spread like any others."""
    import subprocess
    import sys

    from edgetrace import _recscan
    from edgetrace.tui._trace_index import NativeTraceIndex

    ids = _colliding_words(2000, 13)
    blob = np.frombuffer(b"".join(ids), np.uint8)
    lens = np.full(len(ids), 8, np.int64)
    store = np.zeros(len(blob) + 8, np.uint8)
    off = np.zeros(len(ids) + 2, np.uint64)
    index = NativeTraceIndex(lambda: (store, off, 0))
    rows, fresh = index.rows_for([w.decode() for w in ids], blob, lens, 0)
    assert rows.tolist() == list(range(len(ids))) and bool(np.all(fresh))
    assert index._table.probes < 4 * len(ids)  # unkeyed, ≈ len(ids)² / 2
    code = "from edgetrace import _recscan; print(_recscan.hash(b'tractor-01/f0001'))"
    import edgetrace

    here = str(Path(edgetrace.__file__).resolve().parents[1])  # the edgetrace this test imports
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": here}
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                           cwd=tmp_path).stdout for _ in range(3)}  # not the checkout: `-c` puts cwd first
    assert len(keys) == 3  # a key of its own in every process, whatever PYTHONHASHSEED says
    assert _recscan.hash(b"tractor-01/f0001") == _recscan.hash(bytearray(b"tractor-01/f0001"))
