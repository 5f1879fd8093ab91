"""Files as bad luck and attackers leave them: zero tails, inflate bombs, planted symlinks.

Issue 14, defects 9 (a zero tail starting mid-frame), 13 (compaction through a symlink) and
15 (no inflate limit on session frames).
"""

from __future__ import annotations

import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace import CorruptSessionError, Manifest, Session, SessionWriter, Span, SpanKind
from edgetrace._compact import compact
from edgetrace._frames import (
    FILE_HEADER_SIZE,
    FLAG_LZMA,
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
    if not Path("/proc/self/status").is_file():
        pytest.skip("reads the peak RSS from /proc")
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of a large pytest
    # process would report the parent's size
    code = ("import sys\nfrom edgetrace.cli import main\nc = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "print(hwm, file=sys.stderr)\nsys.exit(c)\n")
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
