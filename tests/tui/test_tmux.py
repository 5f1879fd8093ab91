"""The real `edgetrace explore` process in a terminal (tmux), as a user would run it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _capture(name: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout


def _wait_for(name: str, text: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(name)
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared; screen was:\n{screen}")


def test_explore_in_a_real_terminal(toy_session: Path, tmp_path: Path):
    exe = Path(sys.executable).with_name("edgetrace")
    name = f"edgetrace-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    # cwd outside the source tree, so the installed package is what runs
    command = f"'{exe}' explore '{toy_session}'; echo $? > '{done}'; sleep 5"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "100", "-y", "30", "-c", str(tmp_path),
                    command], check=True)
    try:
        screen = _wait_for(name, "traces")
        assert "toy.ets" in screen and "sealed" in screen
        subprocess.run(["tmux", "send-keys", "-t", name, "Enter"], check=True)
        screen = _wait_for(name, "critical path")
        subprocess.run(["tmux", "send-keys", "-t", name, "v"], check=True)
        screen = _wait_for(name, "event (causal order)")
        subprocess.run(["tmux", "send-keys", "-t", name, "?"], check=True)
        _wait_for(name, "[trace list]")
        subprocess.run(["tmux", "send-keys", "-t", name, "Escape"], check=True)
        time.sleep(0.3)
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True)
        deadline = time.monotonic() + 10
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.exists() and done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_bad_session_is_a_one_line_error(tmp_path: Path):
    bad = tmp_path / "nope.ets"
    bad.write_bytes(b"not a session at all")
    exe = Path(sys.executable).with_name("edgetrace")
    out = subprocess.run([str(exe), "explore", str(bad)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=30)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "edgetrace: error:" in out.stderr
