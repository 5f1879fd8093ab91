"""Files as bad luck and attackers leave them: zero tails, inflate bombs, planted symlinks.

Issue 14, defects 9 (a zero tail starting mid-frame), 13 (compaction through a symlink) and
15 (no inflate limit on session frames).
"""

from __future__ import annotations

import lzma
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from edgetrace import CorruptSessionError, Manifest, Session, SessionWriter, Span, SpanKind
from edgetrace._compact import compact
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    FLAG_LZMA,
    FLAG_ZLIB,
    FLAG_ZSTD,
    Frame,
    FrameType,
    ScanResult,
    encode_frame,
    scan_frames,
)


def _session(path: Path, n: int = 6) -> list[int]:
    with SessionWriter(path, Manifest(session_id="z", app="t")) as w:
        for i in range(n):
            w.append([Span(node="a", seq=i + 1, kind=SpanKind.LOG, name="step", attrs={"i": i})])
    return [f.end for f in scan_frames(path.read_bytes(), FILE_HEADER_SIZE, path=path)
            if not isinstance(f, ScanResult)]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetrace", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


# --- 9: a zero tail that starts inside a frame is a torn tail ----------------------------------


def test_zero_tail_starting_anywhere_in_the_last_frame_is_a_torn_tail(tmp_path):
    path = tmp_path / "s.ets"
    ends = _session(path)
    data = path.read_bytes()
    last_start = ends[-2]
    for cut in range(last_start + 1, len(data)):  # every byte of the last frame's header and payload
        for extra in (0, 1, 4096):
            path.write_bytes(data[:cut] + b"\0" * (len(data) - cut + extra))
            session = Session(path)
            assert session.torn and [s.seq for s in session.spans] == [1, 2, 3, 4, 5], (cut, extra)


def test_show_reads_and_the_hub_continues_a_session_with_a_zero_tail(tmp_path):
    path = tmp_path / "s.ets"
    ends = _session(path)
    data = path.read_bytes()
    cut = ends[-2] + 20  # the header of the last frame made it, its payload did not
    path.write_bytes(data[:cut] + b"\0" * 8192)
    shown = _cli("show", str(path), "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    with SessionWriter(path) as w:  # what the hub does on the next hello
        assert w.torn_bytes_cut == cut - ends[-2] + 8192
        assert w.last_seq == {"a": 5}
        w.append([Span(node="a", seq=6, kind=SpanKind.LOG, name="again")])
    assert [s.seq for s in Session(path).spans] == [1, 2, 3, 4, 5, 6]


def test_damage_that_is_not_a_zero_tail_is_still_corruption(tmp_path):
    path = tmp_path / "s.ets"
    ends = _session(path)
    data = bytearray(path.read_bytes())
    data[ends[-2] + 18] ^= 0xFF  # a flipped byte in the last payload, nothing zeroed
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSessionError, match="payload CRC"):
        Session(path)
    data = bytearray(path.read_bytes())
    data[ends[1] + 18] = 0  # zeros in the middle, intact frames after them
    data[ends[-2]:] = b"\0" * (len(data) - ends[-2])
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSessionError):
        Session(path)


# --- 13: compaction writes through a fresh, exclusive temporary file ---------------------------


def test_compaction_does_not_follow_a_planted_symlink(tmp_path):
    path = tmp_path / "s.ets"
    _session(path)
    with SessionWriter(path) as w:
        w.seal()
    os.chmod(path, 0o644)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in (f"{path.name}.compacting", f".{path.name}.compacting"):
        (tmp_path / name).symlink_to(victim)
    compact(path)
    assert victim.read_text() == "precious"
    assert [s.seq for s in Session(path).spans] == [1, 2, 3, 4, 5, 6]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in tmp_path.iterdir() if "compacting" in p.name) == sorted(
        [f"{path.name}.compacting", f".{path.name}.compacting"])  # nothing of ours left behind


# --- 15: bounded inflate ------------------------------------------------------------------------


def _xz_of_zeros(mib: int) -> bytes:
    comp = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, preset=0)
    chunk = b"\0" * (1 << 20)
    return b"".join(comp.compress(chunk) for _ in range(mib)) + comp.flush()


def _peak_rss_mib(args: list[str], cwd: Path) -> tuple[int, float, str]:
    # VmHWM is this process image's own peak: ru_maxrss would carry over the forking parent's
    # (Linux keeps it across exec), i.e. pytest's own size after a few hundred tests
    code = ("import resource, sys\nfrom edgetrace.cli import main\nc = main(sys.argv[1:])\n"
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
            "print(hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(c)\n")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    lines = r.stderr.strip().splitlines()
    return r.returncode, int(lines[-1]) / 1024, "\n".join(lines[:-1])


def test_an_inflate_bomb_blob_costs_show_no_memory_and_is_refused_when_read(tmp_path):
    path = tmp_path / "bomb.ets"
    _session(path, 3)
    bomb = _xz_of_zeros(300)  # 46 KB on disk, 300 MiB inflated
    with open(path, "ab") as fh:  # a blob frame whose hash prefix is what xz yields first: zeros
        fh.write(encode_frame(FrameType.BLOB, bomb, flags=FLAG_LZMA))
    assert path.stat().st_size < 100_000
    code, peak, _ = _peak_rss_mib(["show", str(path)], tmp_path)
    assert code == 0
    assert peak < 200, f"show peaked at {peak:.0f} MiB for a {path.stat().st_size} B session"
    session = Session(path)
    with pytest.raises(CorruptSessionError, match="inflates past"):
        session.blob("00" * 32)


def test_an_inflate_bomb_records_frame_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bomb.ets"
    _session(path, 3)
    with open(path, "ab") as fh:
        fh.write(encode_frame(FrameType.RECORDS, _xz_of_zeros(300), flags=FLAG_LZMA))
    code, peak, err = _peak_rss_mib(["show", str(path)], tmp_path)
    assert code == 2 and "inflates past" in err and len(err.splitlines()) == 1, err
    assert peak < 200, f"show peaked at {peak:.0f} MiB"


# --- compacted sessions are zstd: bounded, strict, and no looser than zlib or xz ---------------


def _zstd_of_zeros(mib: int) -> bytes:
    return zstandard.ZstdCompressor(level=9).compress(b"\0" * (mib << 20))


def test_a_zstd_bomb_records_frame_is_one_line_exit_2_and_costs_no_memory(tmp_path):
    path = tmp_path / "bomb.ets"
    _session(path, 3)
    bomb = _zstd_of_zeros(300)  # ≈ 10 KB on disk, 300 MiB inflated: refused by the size it states
    with open(path, "ab") as fh:
        fh.write(encode_frame(FrameType.RECORDS, bomb, flags=FLAG_ZSTD))
    assert path.stat().st_size < 50_000
    code, peak, err = _peak_rss_mib(["show", str(path)], tmp_path)
    assert code == 2 and "inflates past" in err and len(err.splitlines()) == 1, err
    assert peak < 200, f"show peaked at {peak:.0f} MiB"


def test_a_zstd_bomb_blob_costs_show_no_memory_and_is_refused_when_read(tmp_path):
    path = tmp_path / "bomb.ets"
    _session(path, 3)
    with open(path, "ab") as fh:  # show reads only the blob's hash: 32 bytes of a stream read
        fh.write(encode_frame(FrameType.BLOB, _zstd_of_zeros(300), flags=FLAG_ZSTD))
    code, peak, _ = _peak_rss_mib(["show", str(path)], tmp_path)
    assert code == 0
    assert peak < 200, f"show peaked at {peak:.0f} MiB"
    with pytest.raises(CorruptSessionError, match="inflates past"):
        Session(path).blob("00" * 32)


def _frame(payload: bytes, flags: int = FLAG_ZSTD) -> Frame:
    return Frame(100, FrameType.RECORDS, flags, payload, "s.ets")


def test_a_zstd_payload_must_state_its_size_and_hold_nothing_else():
    body = b"\x90" * 5000
    good = zstandard.ZstdCompressor(level=9).compress(body)
    assert _frame(good).body() == body
    assert _frame(good).head(7) == body[:7]
    streamed = zstandard.ZstdCompressor(level=9, write_content_size=False).compress(body)
    with pytest.raises(CorruptSessionError, match="does not state its size"):
        _frame(streamed).body()
    with pytest.raises(CorruptSessionError, match="does not decompress"):
        _frame(good + b"\0").body()  # trailing bytes: a second frame or garbage, never ignored
    with pytest.raises(CorruptSessionError, match="does not decompress"):
        _frame(good[:-4]).body()  # cut short
    with pytest.raises(CorruptSessionError, match="inflates past"):
        _frame(good).body(limit=len(body) - 1)


def test_a_zstd_frame_that_understates_its_size_fails_instead_of_growing():
    body = bytes(range(256)) * 64
    small = zstandard.ZstdCompressor(level=9).compress(body[:100])
    big = zstandard.ZstdCompressor(level=9).compress(body)
    head_len = zstandard.frame_header_size(big)
    # the big frame's blocks behind the small frame's header (which states 100 bytes)
    liar = small[:zstandard.frame_header_size(small)] + big[head_len:]
    with pytest.raises(CorruptSessionError):
        _frame(liar).body()


def test_a_zstd_frame_asking_for_a_huge_window_is_refused_by_head():
    params = zstandard.ZstdCompressionParameters.from_level(9, window_log=26)
    data = zstandard.ZstdCompressor(compression_params=params).compress(os.urandom(1 << 16) * 1100)
    assert zstandard.get_frame_parameters(data).window_size == 1 << 26
    with pytest.raises(CorruptSessionError, match="does not decompress"):
        _frame(data).head(32)


_CODEC = {FLAG_ZSTD: lambda b: zstandard.ZstdCompressor(level=9).compress(b), FLAG_ZLIB: lambda b: zlib.compress(b, 1),
          FLAG_LZMA: lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE)}


def _damaged(payload: bytes, data: st.DataObject) -> tuple[bytes, str]:
    """The payload intact, or with a byte flipped, cut short, bytes inserted or appended, or
    replaced by random bytes; and which."""
    out = bytearray(payload)
    how = data.draw(st.sampled_from(["intact", "flip", "cut", "insert", "random", "tail"]))
    if how == "flip" and out:
        at = data.draw(st.integers(0, len(out) - 1))
        out[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del out[data.draw(st.integers(0, len(out))):]
    elif how == "insert":
        at = data.draw(st.integers(0, len(out)))
        out[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    elif how == "random":
        out = bytearray(data.draw(st.binary(max_size=300)))
    elif how == "tail":
        out += data.draw(st.binary(min_size=1, max_size=8))
    return bytes(out), how


@given(st.sampled_from(sorted(_CODEC)), st.binary(max_size=3000), st.data())
def test_a_damaged_compressed_payload_inflates_within_the_limit_or_is_refused(flag, body, data):
    """What the CRC cannot catch (a payload damaged before it was framed, or a hostile writer):
    every codec's reader returns at most `limit` bytes or raises CorruptSessionError."""
    payload, how = _damaged(_CODEC[flag](body), data)
    limit = data.draw(st.sampled_from([len(body), 4096, 1 << 20]))
    frame = _frame(payload, flag)
    try:
        got = frame.body(limit=max(limit, 1))
        assert len(got) <= max(limit, 1)
        if how == "intact" and len(body) <= limit:
            assert got == body
    except CorruptSessionError:
        assert how != "intact" or len(body) > limit
    try:
        assert len(frame.head(32)) <= 32
    except CorruptSessionError:
        assert how != "intact"


def test_compaction_writes_zstd_frames_and_old_xz_sessions_still_read(tmp_path):
    path = tmp_path / "s.ets"
    _session(path, 40)
    old = tmp_path / "old.ets"
    with SessionWriter(old, Manifest(session_id="z", app="t"), compress="lzma") as w:
        w.append(Session(path).spans)
        w.seal()
    w2 = tmp_path / "w.ets"
    with SessionWriter(w2, Manifest(session_id="z", app="t")) as w:
        w.append(Session(path).spans)
        w.seal()
    compact(w2)
    flags = {f.flags for f in scan_frames(w2.read_bytes(), FILE_HEADER_SIZE, path=w2)
             if not isinstance(f, ScanResult) and f.type is FrameType.RECORDS}
    assert flags == {FLAG_ZSTD}
    assert {f.flags for f in scan_frames(old.read_bytes(), FILE_HEADER_SIZE, path=old)
            if not isinstance(f, ScanResult) and f.type is FrameType.RECORDS} == {FLAG_LZMA}
    assert Session(old).spans == Session(w2).spans == Session(path).spans


def test_a_compacted_frame_ends_at_frame_bytes_whatever_its_record_count(tmp_path, monkeypatch):
    """Records with large clocks or attributes would otherwise join into a frame past what a
    reader inflates (MAX_INFLATED)."""
    import edgetrace._compact as compaction

    path = tmp_path / "big.ets"
    with SessionWriter(path, Manifest(session_id="z", app="t")) as w:
        for i in range(60):
            w.append([Span(node="a", seq=i + 1, kind=SpanKind.LOG, name="step", attrs={"blob": "x" * 900})])
        w.seal()
    monkeypatch.setattr(compaction, "FRAME_BYTES", 10_000)
    compact(path, records_per_frame=1000)
    sizes = [len(f.body()) for f in scan_frames(path.read_bytes(), FILE_HEADER_SIZE, path=path)
             if not isinstance(f, ScanResult) and f.type is FrameType.RECORDS]
    assert len(sizes) >= 6 and max(sizes) <= 10_000 + 16, sizes
    assert [s.seq for s in Session(path).spans] == list(range(1, 61))


# --- ISA-L inflates the hub's zlib frames: the same bytes, the same refusals -------------------


def _outcome(frame: Frame, limit: int) -> object:
    try:
        return frame.body(limit=limit), frame.head(32)
    except CorruptSessionError as exc:
        return type(exc)


@given(st.binary(max_size=4000), st.integers(1, 9), st.data())
def test_isal_reads_every_zlib_payload_as_zlib_does(body, level, data):
    """Intact, damaged or random: what the ISA-L path returns or refuses is what the standard
    library's zlib returns or refuses (only the wording of a refusal may differ)."""
    from edgetrace import _frames

    payload, _how = _damaged(zlib.compress(body, level), data)
    frame = _frame(payload, FLAG_ZLIB)
    limit = data.draw(st.sampled_from([max(1, len(body)), max(1, len(body) - 1), 1 << 20]))
    fast = _outcome(frame, limit)
    saved = _frames._deflate, _frames._DeflateError
    _frames._deflate, _frames._DeflateError = zlib, zlib.error
    try:
        assert _outcome(frame, limit) == fast
    finally:
        _frames._deflate, _frames._DeflateError = saved


def test_isal_is_used_where_it_is_installed():
    import importlib.util

    from edgetrace import _frames

    if importlib.util.find_spec("isal") is None:
        pytest.skip("isal is not installed here (a platform without its wheel): zlib is used")
    assert _frames._deflate is not zlib
