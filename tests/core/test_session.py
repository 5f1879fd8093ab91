"""The session store round-trips exactly, recovers torn tails and reports corruption."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgetrace import (
    CorruptSessionError,
    Manifest,
    Session,
    SessionWriter,
    Span,
    SpanKind,
    UnsupportedFormatError,
)
from edgetrace._frames import FILE_HEADER_SIZE
from edgetrace._records import Status, blob_id

names = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters=":"), min_size=1,
                max_size=8)
attr_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def streams(draw):
    nodes = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    spans = []
    seqs = dict.fromkeys(nodes, 0)
    for _ in range(draw(st.integers(0, 25))):
        node = draw(st.sampled_from(nodes))
        seqs[node] += 1
        spans.append(Span(
            node=node, seq=seqs[node], kind=draw(st.sampled_from(list(SpanKind))), name=draw(names),
            trace=draw(st.text(max_size=6)), start=draw(st.integers(0, 2**62)),
            end=draw(st.integers(0, 2**62)),
            vc=draw(st.dictionaries(st.sampled_from(nodes), st.integers(1, 1000), max_size=3)),
            attrs=draw(st.dictionaries(st.text(max_size=8), attr_values, max_size=3)),
            status=draw(st.sampled_from(list(Status))), error=draw(st.text(max_size=5)),
        ))
    blobs = draw(st.lists(st.binary(max_size=200), max_size=4))
    return spans, blobs


@given(streams(), st.sampled_from([False, True, "lzma", "zstd"]))
def test_write_read_roundtrip(tmp_path_factory, data, compress):
    spans, blobs = data
    path = tmp_path_factory.mktemp("rt") / "s.ets"
    manifest = Manifest(app="t", nodes=sorted({s.node for s in spans}), seed=3)
    with SessionWriter(path, manifest, compress=compress) as w:
        for i in range(0, len(spans), 7):
            w.append(spans[i : i + 7])
        shas = [w.put_blob(b) for b in blobs]
    s = Session(path)
    assert s.spans == spans
    assert s.manifest.app == "t" and s.manifest.seed == 3
    for b, sha in zip(blobs, shas, strict=True):
        assert sha == blob_id(b) and s.blob(sha) == b


def _small_session(path):
    with SessionWriter(path, Manifest(app="t", nodes=["a", "b"])) as w:
        w.append([Span(node="a", seq=1, kind=SpanKind.INPUT, name="frame", trace="t1")])
        w.put_blob(b"payload")
        w.append([Span(node="a", seq=2, kind=SpanKind.SEND, name="m", trace="t1"),
                  Span(node="b", seq=1, kind=SpanKind.RECV, name="m", trace="t1", vc={"a": 2}, cause="a:2")])
        w.flush()
        mid = path.stat().st_size
        w.append([Span(node="b", seq=2, kind=SpanKind.ACT, name="spray", trace="t1")])
    return mid, path.stat().st_size


def test_blobs_are_deduplicated(tmp_session_path):
    with SessionWriter(tmp_session_path) as w:
        a = w.put_blob(b"x" * 1000)
        w.flush()
        size = tmp_session_path.stat().st_size
        assert w.put_blob(b"x" * 1000) == a
        w.flush()
        assert tmp_session_path.stat().st_size == size


def test_truncation_anywhere_in_last_frame_recovers_prefix(tmp_path):
    original = tmp_path / "orig.ets"
    mid, end = _small_session(original)
    data = original.read_bytes()
    for cut in range(mid, end):
        path = tmp_path / f"cut{cut}.ets"
        path.write_bytes(data[:cut])
        s = Session(path)
        assert [x.ref for x in s.spans] == ["a:1", "a:2", "b:1"]
        assert s.torn == (cut != mid)
        # a writer reopening the file cuts the torn tail and continues cleanly
        with SessionWriter(path) as w:
            assert w.last_seq == {"a": 2, "b": 1}
            w.append([Span(node="b", seq=2, kind=SpanKind.ACT, name="spray", trace="t1")])
        assert [x.ref for x in Session(path).spans] == ["a:1", "a:2", "b:1", "b:2"]


def test_every_flipped_bit_is_detected(tmp_path):
    original = tmp_path / "orig.ets"
    _small_session(original)
    data = original.read_bytes()
    for offset in range(len(data)):
        for bit in (0, 5):
            damaged = bytearray(data)
            damaged[offset] ^= 1 << bit
            path = tmp_path / "d.ets"
            path.write_bytes(bytes(damaged))
            with pytest.raises((CorruptSessionError, UnsupportedFormatError)):
                s = Session(path)
                for sha in list(s.blob_ids()):
                    s.blob(sha)
                raise AssertionError(f"bit {bit} at offset {offset} went unnoticed")


def test_unknown_version_is_refused_with_advice(tmp_session_path):
    _small_session(tmp_session_path)
    data = bytearray(tmp_session_path.read_bytes())
    import struct
    import zlib
    data[8:10] = struct.pack("<H", 99)
    data[12:16] = struct.pack("<I", zlib.crc32(bytes(data[:12])))
    tmp_session_path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedFormatError, match="upgrade edgetrace"):
        Session(tmp_session_path)


def test_zero_filled_tail_counts_as_torn(tmp_session_path):
    _small_session(tmp_session_path)
    with open(tmp_session_path, "ab") as fh:
        fh.write(b"\0" * 100)
    assert len(Session(tmp_session_path)) == 4


def test_reader_follows_a_live_writer(tmp_session_path):
    w = SessionWriter(tmp_session_path, Manifest(app="t"))
    w.append([Span(node="a", seq=1, kind=SpanKind.LOG, name="x")])
    w.flush()
    s = Session(tmp_session_path)
    assert len(s) == 1 and not s.sealed
    w.append([Span(node="a", seq=2, kind=SpanKind.LOG, name="y")])
    w.seal()
    w.close()
    assert [x.ref for x in s.refresh()] == ["a:2"]
    assert s.sealed


def _cli(*args, **kw):
    # cwd elsewhere: from the repository root `python -m` would import the source folder.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-m", "edgetrace", *args], capture_output=True, text=True, env=env,
                          cwd=os.path.expanduser("~"), **kw)


def test_cli_corrupt_session_is_one_line_exit_2(tmp_session_path):
    _small_session(tmp_session_path)
    data = bytearray(tmp_session_path.read_bytes())
    data[FILE_HEADER_SIZE + 20] ^= 0xFF
    tmp_session_path.write_bytes(bytes(data))
    r = _cli("show", str(tmp_session_path))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "offset" in r.stderr


@pytest.mark.parametrize("junk", [b"", b"hello world", b"ETSESS\r\n\x01\x00"])
def test_cli_not_a_session(tmp_session_path, junk):
    tmp_session_path.write_bytes(junk)
    r = _cli("show", str(tmp_session_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_show_lists_causal_order(tmp_session_path):
    _small_session(tmp_session_path)
    r = _cli("show", str(tmp_session_path), "--trace", "t1")
    assert r.returncode == 0, r.stderr
    refs = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    assert refs == ["a:1", "a:2", "b:1", "b:2"]
    r = _cli("show", str(tmp_session_path), "--json")
    import json
    data = json.loads(r.stdout)
    assert data["traces"][0]["actions"] == ["spray"]


@given(streams())
def test_compact_keeps_every_record_blob_and_the_seal(tmp_path_factory, data):
    from edgetrace._compact import compact

    spans, blobs = data
    path = tmp_path_factory.mktemp("compact") / "s.ets"
    with SessionWriter(path, Manifest(app="t", seed=5)) as w:
        for i in range(0, len(spans), 3):
            w.append(spans[i : i + 3])
            if blobs:
                w.put_blob(blobs[i % len(blobs)])
        shas = [w.put_blob(b) for b in blobs]
        w.seal()
    before = Session(path)
    compact(path, records_per_frame=5)
    after = Session(path)
    assert after.spans == before.spans and after.sealed and after.manifest == before.manifest
    for b, sha in zip(blobs, shas, strict=True):
        assert after.blob(sha) == b
    with SessionWriter(path) as w:  # a compacted session still opens for writing (recovery)
        assert w.sealed and w.records == len(spans)


def test_compact_refuses_an_open_session_and_shrinks_a_real_one(tmp_path):
    from edgetrace import UsageError
    from edgetrace._compact import compact

    path = tmp_path / "open.ets"
    spans = [Span(node=f"n{i % 50}", seq=i // 50 + 1, kind=SpanKind.RECV, name="m", trace=f"t{i}",
                  vc={f"n{j}": i // 50 for j in range(0, 50, 7)}, attrs={"edgetrace.payload": {"i": i}})
             for i in range(3000)]
    with SessionWriter(path, Manifest(app="t")) as w:
        for i in range(0, len(spans), 100):
            w.append(spans[i : i + 100])
    with pytest.raises(UsageError, match="only a sealed session"):
        compact(path)
    with SessionWriter(path) as w:
        w.seal()
    before, after = compact(path)
    assert after < before * 0.8
    assert Session(path).spans == spans
    assert not (tmp_path / "open.ets.compacting").exists()


def test_unknown_frame_flags_are_refused_with_advice(tmp_session_path):
    import struct
    import zlib

    from edgetrace._frames import FrameType, encode_frame

    _small_session(tmp_session_path)
    frame = bytearray(encode_frame(FrameType.RECORDS, b"\x90"))
    frame[5] = 0x80  # a compression this build does not know
    head = bytes(frame[:12])
    frame[12:16] = struct.pack("<I", zlib.crc32(head))
    with open(tmp_session_path, "ab") as fh:
        fh.write(bytes(frame))
    with pytest.raises(CorruptSessionError, match="upgrade"):
        Session(tmp_session_path)
