"""The explorer's ref table: `node:seq` → span index, as a dict of first uses would say."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edgetrace.tui._refs import RefTable

frames = st.lists(  # frames of (node code, seq): repeats within and across frames, regions that grow
    st.lists(st.tuples(st.integers(1, 6), st.one_of(st.integers(0, 40), st.integers(0, 3000))), max_size=60),
    max_size=8,
)


@given(frames)
def test_the_table_finds_what_a_dict_of_first_uses_finds(frames):
    table, model, base = RefTable(), {}, 0
    for frame in frames:
        node = np.array([n for n, _ in frame], np.uint16)
        seq = np.array([s for _, s in frame], np.int64)
        table.add(base, node, seq)
        for i, key in enumerate(frame):
            model.setdefault(key, base + i)
        base += len(frame)
    asked = sorted({key for frame in frames for key in frame} | {(n, s) for n in range(8) for s in (0, 1, 41, 5000)})
    found = table.find(np.array([n for n, _ in asked], np.uint16), np.array([s for _, s in asked], np.uint32))
    assert found.tolist() == [model.get(key, -1) for key in asked]


def test_a_ref_repeated_in_one_frame_keeps_its_first_span():
    table = RefTable()
    table.add(0, np.array([1, 2, 1, 1], np.uint16), np.array([5, 5, 5, 6], np.int64))
    table.add(4, np.array([1, 2], np.uint16), np.array([6, 7], np.int64))
    assert table.one(1, 5) == 0 and table.one(2, 5) == 1 and table.one(1, 6) == 3 and table.one(2, 7) == 5
    assert table.one(3, 1) is None and table.one(0, 0) is None


def test_the_frames_of_a_few_spans_are_found_as_for_many(tmp_path):
    """`frame_of` finds a drawn row's frames without numpy (which would wait for the scan's
    GIL); both ways give the same offsets."""
    from edgetrace import Manifest, SessionWriter, Span, SpanKind
    from edgetrace.tui._store import TraceStore

    path = tmp_path / "s.ets"
    with SessionWriter(path, Manifest(app="x")) as w:
        for f in range(40):
            w.append([Span(node="a", seq=f * 5 + i + 1, kind=SpanKind.LOG, name="s", trace=f"t{(f * 5 + i) % 7}")
                      for i in range(5)])
    store = TraceStore(path)
    store.scan()
    table = store.table
    rng = np.random.default_rng(3)
    for size in (1, 3, 64, 65, 200):
        spans = sorted(rng.choice(table.span_count, size=size, replace=False).tolist())
        few = [table.frame_of(spans[k:k + 1])[0] for k in range(len(spans))]
        assert table.frame_of(spans) == sorted(set(few))
        assert table.frame_of(iter(spans)) == table.frame_of(spans)
