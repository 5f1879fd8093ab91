"""The explorer's packed trace rows agree with a full decode of the same session."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from edgetrace import Manifest, SessionWriter, Span, SpanKind, Status
from edgetrace.tui._store import TraceStore
from edgetrace.tui._trace_index import TraceIndex
from edgetrace.tui._trace_table import SORTS, TraceRow, TraceTable


def interleaved_session(path: Path, *, traces: int = 400, frames: int = 60, seed: int = 5) -> list[Span]:
    """Traces whose spans are spread over many frames, on several nodes, out of order."""
    rng = random.Random(seed)
    seqs: dict[str, int] = {}
    spans = []
    for _ in range(traces * 5):
        trace = f"tr-{rng.randrange(traces):04d}-é"  # non-ASCII: ids are stored as UTF-8
        node = f"n{rng.randrange(6)}"
        seqs[node] = seqs.get(node, 0) + 1
        kind = rng.choice([SpanKind.INFER, SpanKind.DECIDE, SpanKind.ACT, SpanKind.FAULT, SpanKind.LOG])
        start = rng.randrange(10**9)
        attrs = {"edgetrace.decision": rng.choice(["hold", "spray"])} if kind is SpanKind.DECIDE else {}
        spans.append(Span(node=node, seq=seqs[node], kind=kind, name=f"{kind.value}-{rng.randrange(3)}",
                          trace=trace, start=start, end=start + rng.randrange(10**7), attrs=attrs,
                          status=Status.ERROR if rng.random() < 0.05 else Status.OK))
    with SessionWriter(path, Manifest(app="mix")) as w:
        step = len(spans) // frames
        for at in range(0, len(spans), step):
            w.append(spans[at:at + step])
        w.seal()
    return spans


def by_trace(spans: list[Span]) -> dict[str, list[Span]]:
    """Spans of each trace in file order, traces in order of first appearance."""
    found: dict[str, list[Span]] = {}
    for s in spans:
        found.setdefault(s.trace, []).append(s)
    return found


@pytest.mark.parametrize(("recent", "native"), [
    (8, False), (100_000, False),  # the Python index: hash arrays in play, or the dict alone
    (8, True),  # the C walk and the C trace index (`_recscan`), where it is built
])
def test_rows_match_a_full_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recent: int, native: bool):
    from edgetrace.tui import _span_columns

    if native and not _span_columns.NATIVE:
        pytest.skip("edgetrace._recscan is not built here")
    if not native:
        monkeypatch.setattr(_span_columns, "_recscan", None)
    monkeypatch.setattr(TraceIndex, "RECENT", recent)
    path = tmp_path / "mix.ets"
    traces = by_trace(interleaved_session(path))
    store = TraceStore(path)
    while not store.at_end:
        store.scan(max_frames=3)
    assert store.count == len(store.rows) == len(traces)
    assert [r.trace for r in store.rows] == list(traces)  # arrival order
    for trace, spans in traces.items():
        row = store.row_of(trace)
        assert row is not None and store.rows[row.index].trace == trace
        assert row.spans == len(spans)
        assert row.errors == sum(s.status is Status.ERROR for s in spans)
        assert row.faults == sum(s.kind is SpanKind.FAULT for s in spans)
        assert row.nodes == sorted({s.node for s in spans})
        assert (row.node, row.root_seq, row.root_name) == (spans[0].node, spans[0].seq, spans[0].name)
        # no messages, so no clock offsets: the common axis is every node's local clock
        assert row.start == min(s.start for s in spans)
        assert row.duration == max(s.end for s in spans) - row.start
        acts = [s.name for s in spans if s.kind is SpanKind.ACT]
        assert row.acts == ",".join(acts)
        decisions = [s.attrs["edgetrace.decision"] for s in spans if s.kind is SpanKind.DECIDE]
        assert row.decision == (decisions[-1] if decisions else "")
        assert {s.ref for s in store.graph(trace).spans} == {s.ref for s in spans}
    assert store.index_of("no-such-trace") is None
    graphs = list(store.iter_rows_graphs())
    assert sorted((row, g.trace) for row, g in graphs) == sorted((store.index_of(t), t) for t in traces)
    assert all(len(g.spans) == len(traces[g.trace]) for _, g in graphs)


def test_sort_orders_are_stable_and_match_python(tmp_path: Path):
    interleaved_session(tmp_path / "mix.ets", traces=200)
    store = TraceStore(tmp_path / "mix.ets")
    store.scan()
    rows = list(store.rows)
    keys = {"trace": lambda r: r.trace, "duration": lambda r: -r.duration, "spans": lambda r: -r.spans,
            "errors": lambda r: -r.errors, "start": lambda r: r.start}
    assert store.sorted_order("arrival") is None
    for name in SORTS[1:]:
        expected = sorted(range(len(rows)), key=lambda i: keys[name](rows[i]))
        assert store.sorted_order(name).tolist() == expected, name
        subset = list(range(0, len(rows), 3))
        assert store.sorted_order(name, subset).tolist() == sorted(subset, key=lambda i: keys[name](rows[i]))
    with pytest.raises(ValueError, match="expected one of"):
        store.sorted_order("bogus")


def test_columns_grow_past_the_first_guess(tmp_path: Path):
    path = tmp_path / "mix.ets"
    traces = by_trace(interleaved_session(path, traces=3000, frames=10))
    store = TraceStore(path)
    store.table = TraceTable(2, span_capacity=2)  # start tiny
    store.scan()
    assert [r.trace for r in store.rows] == list(traces)
    roomy = TraceStore(path)
    roomy.scan()
    fields = list(TraceRow.__slots__)
    assert [[getattr(r, f) for f in fields] for r in store.rows] == [[getattr(r, f) for f in fields] for r in roomy.rows]


def test_causes_resolve_when_their_span_comes_later_in_the_file(tmp_path: Path):
    """A hub stores each agent's batches as they arrive: a receive may be stored before the
    send it names. Its cause is found once the send is scanned, and the message counts as
    evidence for the clock offsets."""
    send = Span(node="a", seq=1, kind=SpanKind.SEND, name="m", trace="t", start=100, end=100)
    recv = Span(node="b", seq=1, kind=SpanKind.RECV, name="m", trace="t", cause="a:1", start=50, end=50)
    back = Span(node="a", seq=2, kind=SpanKind.RECV, name="m:reply", trace="t", cause="b:1", start=100, end=300)
    wild = Span(node="c", seq=4_000_000_000, kind=SpanKind.LOG, name="x", trace="u")
    dup = Span(node="b", seq=1, kind=SpanKind.RECV, name="again", trace="t", cause="a:1", start=60, end=60)
    path = tmp_path / "late.ets"
    with SessionWriter(path, Manifest(app="x")) as w:
        w.append([recv, wild])
        w.append([send, back, dup])
        w.seal()
    store = TraceStore(path)
    store.scan(max_frames=2)  # the manifest and the first records frame
    assert store.span_index("b:1") == 0 and store.table.refs.pending.tolist() == [0]
    store.scan()
    assert store.span_index("a:1") == 2 and store.span_index("b:1") == 0  # the first of a repeat
    assert store.span_index("c:4000000000") is None and store.span_index("nope:1") is None
    assert not len(store.table.refs.pending)
    msgs = store.messages()
    assert sorted(zip(msgs.src.tolist(), msgs.dst.tolist(), strict=True)) == [(0, 3), (2, 0), (2, 4)]
    clock = store.estimate_clocks()
    # b's clock is 50 ns behind a's send, and the reply took 200 ns: b runs behind
    assert clock.offsets["b"] - clock.offsets["a"] > 0


def test_settling_merges_like_a_sort(monkeypatch: pytest.MonkeyPatch):
    """The chunked merge of new hashes into the sorted arrays equals sorting them together,
    duplicates and hashes that straddle chunk borders included."""
    import numpy as np

    from edgetrace.tui import _trace_index

    monkeypatch.setattr(_trace_index, "_CHUNK", 7)
    rng = np.random.default_rng(3)
    for n_old, n_new in [(0, 5), (50, 1), (1, 50), (200, 60)]:
        keys = np.sort(rng.integers(-20, 20, n_old)).astype(np.int64)
        hashes = np.sort(rng.integers(-25, 25, n_new)).astype(np.int64)
        rows_old = np.arange(n_old, dtype=np.int32)
        rows_new = np.arange(n_old, n_old + n_new, dtype=np.int32)
        out_keys, out_rows = _trace_index._merged((keys, rows_old), hashes, rows_new)
        assert out_keys.tolist() == sorted(keys.tolist() + hashes.tolist())
        assert sorted(out_rows.tolist()) == list(range(n_old + n_new))  # every row once
        both = dict(zip(rows_old.tolist() + rows_new.tolist(), keys.tolist() + hashes.tolist(), strict=True))
        assert [both[r] for r in out_rows.tolist()] == out_keys.tolist()  # each row beside its hash


def test_both_format_versions_and_stream_markers(tmp_path: Path):
    """Format 2's MARKER frames (a restart, a lost range) sit between records frames: the scan
    steps over them and reads every record; a format-1 file reads as before."""
    from edgetrace._records import Incarnation, Lost
    from edgetrace._session import Session

    path = tmp_path / "v2.ets"
    spans = [Span(node="a", seq=i, kind=SpanKind.LOG, name="l", trace=f"t{i % 3}", start=i, end=i + 1)
             for i in range(1, 11)]
    with SessionWriter(path, Manifest(app="mark")) as w:
        w.write_marker(Incarnation(node="a", id="00000000000000aa", start=1, base=1, restart=True))
        w.append(spans[:4])
        w.write_marker(Lost(node="a", first=5, last=5, reason="damaged in the spool"))
        w.write_marker(Incarnation(node="a", id="00000000000000bb", start=6, base=6, previous="00000000000000aa",
                                   restart=True))
        w.append(spans[5:])
        w.seal()
    assert Session(path).version == 2 and Session(path).restarts("a") == [1, 6]
    store = TraceStore(path)
    store.scan()
    assert store.at_end and store.sealed and not store.torn
    assert store.span_count == 9 and store.count == 3
    assert {s.ref for s in store.spans_at(range(9))} == {s.ref for s in spans if s.seq != 5}

    old = Path(__file__).parents[1] / "data" / "agri-demo.ets"
    assert old.read_bytes()[8] == 1  # written before markers existed
    store = TraceStore(old)
    store.scan()
    assert store.at_end and store.span_count == len(Session(old).spans)


def test_a_scan_that_stops_early_hands_its_opened_frames_to_the_next(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    """The first screen reads a few frames and its reader has opened more ahead (inflated and
    walked on the workers): the background scan that goes on from there takes those, opening
    every records frame once, and ends with the tables one whole scan leaves."""
    from edgetrace._frames import FILE_HEADER_SIZE, FrameType, ScanResult, scan_frames
    from edgetrace.tui import _scan

    path = tmp_path / "mix.ets"
    interleaved_session(path, traces=300, frames=40)
    opened: list[int] = []
    real = _scan._opened

    def counting(frame):  # type: ignore[no-untyped-def]
        opened.append(frame.offset)
        return real(frame)

    monkeypatch.setattr(_scan, "_opened", counting)
    records = sum(1 for f in scan_frames(path.read_bytes(), FILE_HEADER_SIZE, path=path)
                  if not isinstance(f, ScanResult) and f.type is FrameType.RECORDS)
    whole = TraceStore(path)
    whole.scan()
    assert len(opened) == len(set(opened)) == records
    opened.clear()
    store = TraceStore(path)
    for frames in (1, 2, 5):
        store.scan(max_frames=frames)
    store.scan(min_rows=store.count + 1)
    store.scan()
    assert store.at_end and len(opened) == len(set(opened)) == records
    fields = list(TraceRow.__slots__)
    assert [[getattr(r, f) for f in fields] for r in store.rows] == [[getattr(r, f) for f in fields] for r in whole.rows]
    # from anywhere else, or up to another size (the file grew), the reader starts afresh
    reader = _scan.FrameReader(path)
    size = path.stat().st_size
    frames = reader.frames(FILE_HEADER_SIZE, size)
    first = next(frames)
    assert isinstance(first, _scan.OpenFrame)
    assert reader.frames(first.frame.end, size) is frames
    assert reader.frames(first.frame.end, size + 1) is not frames
    opened.clear()
    again = [(item, item.walked(path)) if isinstance(item, _scan.OpenFrame) else (item, None)
             for item in reader.frames(FILE_HEADER_SIZE, size)]  # walked: waits for the worker
    assert isinstance(again[-1][0], ScanResult)
    assert len(set(opened)) == records  # (the dropped reader's frames read ahead were opened too)


def test_a_damaged_frame_is_raised_after_every_frame_before_it(tmp_path: Path):
    """The reader reads frames ahead of the one handed out; damage it finds ahead is still
    raised where it is in the file, after every frame before it has been handed out."""
    from edgetrace._errors import CorruptSessionError
    from edgetrace._frames import FILE_HEADER_SIZE, FrameType, ScanResult, scan_frames
    from edgetrace.tui._scan import FrameReader, OpenFrame

    path = tmp_path / "mix.ets"
    interleaved_session(path, traces=50, frames=20)
    frames = [f for f in scan_frames(path.read_bytes(), FILE_HEADER_SIZE, path=path)
              if not isinstance(f, ScanResult) and f.type is FrameType.RECORDS]
    bad = frames[12]
    data = bytearray(path.read_bytes())
    data[bad.end - 3] ^= 0xFF  # the payload's CRC no longer matches
    path.write_bytes(bytes(data))
    handed: list[int] = []
    with pytest.raises(CorruptSessionError, match=f"offset {bad.offset}"):
        for item in FrameReader(path).frames(FILE_HEADER_SIZE, len(data)):
            assert isinstance(item, OpenFrame)
            handed.append(item.frame.offset)
    assert handed[-1] == frames[11].offset and handed[1:] == [f.offset for f in frames[:12]]


def test_growing_copies_only_what_is_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A compacted session holds a span in ≈ 20 bytes, fewer than the first guess from the
    file size allows for, so its columns grow. Growing copies the entries held, not the old
    capacity: the rest was never written, and copying it would make every page of the new
    columns resident (≈ 60 MB more per million spans of capacity). The scan reads alike."""
    from edgetrace import _compact
    from edgetrace.tui._columns import Columns

    path = tmp_path / "mix.ets"
    traces = by_trace(interleaved_session(path, traces=4000, frames=80))
    _compact.compact(path, records_per_frame=500)
    assert path.stat().st_size < 20000 * 48  # fewer bytes per span than the first guess allows
    grown: list[tuple[int, int]] = []  # (entries held, old capacity) at each growth
    reserve = Columns.reserve

    def noting(self, need, held=None):  # type: ignore[no-untyped-def]
        before, first = self.capacity, next(iter(self.SPEC))
        old = getattr(self, first)
        reserve(self, need, held)
        if self.capacity != before:
            grown.append((held, before))
            new = getattr(self, first)
            assert np.array_equal(new[:held], old[:held]) and not np.any(new[held:])

    monkeypatch.setattr(Columns, "reserve", noting)
    store = TraceStore(path)
    store.scan()
    assert store.span_count == 20000 and [r.trace for r in store.rows] == list(traces)
    assert grown and all(held is not None and held < before for held, before in grown), grown
