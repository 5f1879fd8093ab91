"""The spool keeps spans on disk across crashes and hands the shipper what is still owed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrace import SpanKind, UsageError
from edgetrace.agents import Recorder
from edgetrace.agents._spool import Spool


def _fill(spool: Spool, n: int, node: str = "a", distinct: int = 7) -> Recorder:
    rec = Recorder(node, spool)
    for i in range(n):
        sha = rec.blob(f"payload-{i % distinct}".encode())
        rec.record(SpanKind.INFER, "m", trace=f"t{i}", blobs={"input": sha}, merge={"b": i} if i % 3 == 0 else None)
    return rec


def test_pending_returns_spans_after_cursor_with_their_blobs(tmp_path):
    spool = Spool(tmp_path / "a.spool")
    _fill(spool, 600, distinct=10_000)
    pending = spool.pending(0, limit=1000)
    spans, blobs = pending.spans, pending.blobs
    assert [s.seq for s in spans] == list(range(1, 601))
    assert {sha for sha, _ in blobs} == {s.blobs["input"] for s in spans}
    later = spool.pending(300, limit=10).spans
    assert [s.seq for s in later] == list(range(301, 311))
    # the first span of every sparse-index block brings its blob along
    block, block_blobs = spool.pending(256, limit=1).spans, spool.pending(256, limit=1).blobs
    assert block[0].seq == 257 and block_blobs
    spool.close()


def test_recovery_restores_cursor_clock_and_cuts_torn_tail(tmp_path):
    path = tmp_path / "a.spool"
    spool = Spool(path)
    rec = _fill(spool, 50)
    spool.ack(20)
    spool.close()
    with open(path, "ab") as fh:
        fh.write(b"\x05\x00\x00")  # a torn frame header
    again = Spool(path)
    assert (again.last_seq, again.acked) == (50, 20)
    assert again.clock == rec.clock_dict()
    resumed = Recorder("a", again)
    resumed.resume(again.last_seq, again.clock)
    resumed.record(SpanKind.LOG, "after-restart")
    # a restart is a new incarnation: a batch holds spans of one incarnation only
    assert [s.seq for s in again.pending(49).spans] == [50]
    assert [s.seq for s in again.pending(50).spans] == [51]
    assert again.pending(50).incarnation is again.incarnation != again.pending(49).incarnation
    again.close()


def test_out_of_order_emit_is_refused(tmp_path):
    spool = Spool(tmp_path / "a.spool")
    _fill(spool, 2)
    from edgetrace import Span

    with pytest.raises(UsageError, match="does not follow"):
        spool.emit(Span(node="a", seq=5, kind=SpanKind.LOG, name="x"))
    spool.close()


@settings(max_examples=25)
@given(st.integers(1, 40), st.data())
def test_truncation_anywhere_keeps_a_contiguous_prefix(tmp_path_factory, n, data):
    path = tmp_path_factory.mktemp("sp") / "a.spool"
    spool = Spool(path)
    _fill(spool, n)
    spool.close()
    raw = path.read_bytes()
    cut = data.draw(st.integers(16, len(raw)))
    path.write_bytes(raw[:cut])
    again = Spool(path)
    seqs = [s.seq for s in again.pending(0, limit=1000).spans]
    again.close()
    assert seqs == list(range(1, again.last_seq + 1))
