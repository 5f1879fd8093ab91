"""Records frames inflated ahead on worker threads read exactly as frames decoded one by one."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrace import CorruptSessionError, Manifest, Session, SessionWriter, Span, SpanKind
from edgetrace._codec import decode_spans
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    FLAG_ZLIB,
    Frame,
    FrameType,
    encode_frame,
    scan_frames,
)
from edgetrace._inflate import AHEAD, inflated


def _write(path, sizes):
    seq = 0
    with SessionWriter(path, Manifest(session_id="z", app="t")) as w:
        for n in sizes:
            w.append([Span(node="a", seq=seq + i + 1, kind=SpanKind.LOG, name="s", attrs={"i": seq + i},
                           vc={"b": seq + i}) for i in range(n)])
            seq += n


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), max_size=3 * AHEAD))
def test_a_session_reads_as_its_frames_decoded_one_by_one(tmp_path_factory, sizes):
    path = tmp_path_factory.mktemp("s") / "s.ets"
    _write(path, sizes)
    one_by_one = [s for f in scan_frames(path.read_bytes(), FILE_HEADER_SIZE, path=path)
                  if isinstance(f, Frame) and f.type is FrameType.RECORDS for s in decode_spans(f.body())]
    assert Session(path).spans == one_by_one
    assert [s.seq for s in one_by_one] == list(range(1, sum(sizes) + 1))


def test_what_the_scan_raises_comes_after_the_frames_before_it():
    def scan():
        yield from range(3)
        raise ValueError("damage")

    seen = []
    with pytest.raises(ValueError, match="damage"):
        for item, body in inflated(scan()):
            assert body is None
            seen.append(item)
    assert seen == [0, 1, 2]


def test_the_first_damage_in_file_order_is_the_one_reported(tmp_path):
    """A records frame that does not decode, then (within the read-ahead) a frame whose CRC
    does not match: the reader names the first, as a frame-at-a-time reader does."""
    path = tmp_path / "s.ets"
    _write(path, [2])
    bad_at = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(encode_frame(FrameType.RECORDS, zlib.compress(b"\x91\xc1", 1), flags=FLAG_ZLIB))
        frame = bytearray(encode_frame(FrameType.RECORDS, zlib.compress(b"\x90", 1), flags=FLAG_ZLIB))
        frame[-1] ^= 0xFF  # payload CRC no longer matches
        fh.write(bytes(frame))
    with pytest.raises(CorruptSessionError) as caught:
        Session(path)
    assert caught.value.offset == bad_at and "does not decode" in str(caught.value)
