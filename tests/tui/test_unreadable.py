"""A session the explorer cannot read ends it with one line and exit 2, as `show` does (issue 14, defect 10).

Damage found when the session is opened, and damage the background reader finds further in,
both end the app with the reader's own `CorruptSessionError`; a zero tail is a torn tail, and
the session opens.
"""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from edgetrace import CorruptSessionError, Manifest, SessionWriter, Span, SpanKind
from edgetrace._frames import FrameType, encode_frame
from edgetrace.tui._app import ExplorerApp


def _session(path: Path, frames: int = 1, per_frame: int = 40) -> Path:
    with SessionWriter(path, Manifest(session_id="u", app="t")) as w:
        for f in range(frames):
            w.append([Span(node="a", seq=f * per_frame + i, kind=SpanKind.LOG, name="x", trace=f"t{f}-{i}")
                      for i in range(1, per_frame + 1)])
    return path


def _flipped(path: Path, at: float) -> Path:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))
    return path


def _huge_start(path: Path) -> Path:
    _session(path)
    row = ["a", 41, "log", "x", "t-big", "", "", 2**64 - 1, 2**64 - 1, {}, {}, "ok", "", {}]
    with open(path, "ab") as fh:
        fh.write(encode_frame(FrameType.RECORDS, msgspec.msgpack.encode([row])))
    return path


def _zero_tail(path: Path) -> Path:
    _session(path)
    data = path.read_bytes()
    path.write_bytes(data[:-30] + b"\0" * 30)
    return path


def _run(path: Path, *, follow: bool = False) -> ExplorerApp:
    async def main() -> ExplorerApp:
        app = ExplorerApp(path, follow=follow)
        async with app.run_test() as pilot:
            for _ in range(40):
                await pilot.pause(0.05)
                if app.error is not None or app.return_code is not None:
                    break
        return app

    return asyncio.run(main())


@pytest.mark.app_errors
@pytest.mark.parametrize("make", [lambda p: _flipped(_session(p), 0.5), _huge_start], ids=["flipped byte", "start 2^64-1"])
def test_damage_found_at_open_ends_the_explorer_with_the_readers_error(tmp_path, make):
    app = _run(make(tmp_path / "bad.ets"))
    assert isinstance(app.error, CorruptSessionError) and app.return_code == 2


@pytest.mark.app_errors
def test_damage_the_background_reader_finds_ends_it_too(tmp_path):
    # the first screen is read from the first frames; the damage is far beyond them
    path = _flipped(_session(tmp_path / "big.ets", frames=60, per_frame=50), 0.95)
    app = _run(path, follow=True)  # (the background reader is the follower)
    assert isinstance(app.error, CorruptSessionError) and app.return_code == 2


def test_a_zero_tail_is_a_torn_tail_and_the_session_opens(tmp_path):
    app = _run(_zero_tail(tmp_path / "torn.ets"))
    assert app.error is None


@pytest.mark.skipif(not hasattr(pty, "openpty"), reason="needs a pseudo-terminal")
def test_the_cli_prints_one_line_and_exits_2(tmp_path):
    path = _flipped(_session(tmp_path / "bad.ets"), 0.5)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edgetrace", "explore", str(path), "--no-follow"],
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE, env={**os.environ, "TERM": "xterm"})
    os.close(slave)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            os.read(master, 65536)  # the screen's bytes: drained so the app never blocks on them
        except OSError:
            time.sleep(0.05)
    os.close(master)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "CRC mismatch" in lines[0] and "Traceback" not in err.decode()
