"""The real `edgetrace explore` process in a terminal (tmux), as a user would run it."""

from __future__ import annotations

import os
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


def _wait_for(name: str, text: str, timeout: float = 40.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(name)
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared; screen was:\n{screen}")


def _wait_until_gone(name: str, text: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while text in _capture(name) and time.monotonic() < deadline:
        time.sleep(0.2)


def _command(args: str, done: Path, **env: str) -> str:
    """`edgetrace ARGS` as a tmux command. cwd is outside the source tree, so the installed
    package runs — or the checkout PYTHONPATH names (the tmux server does not pass on our
    environment by itself)."""
    exe = Path(sys.executable).with_name("edgetrace")
    if os.environ.get("PYTHONPATH"):
        env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
    prefix = "env " + " ".join(f"{k}='{v}'" for k, v in env.items()) + " " if env else ""
    return f"{prefix}'{exe}' {args}; echo $? > '{done}'; sleep 5"


def _start(name: str, command: str, cwd: Path, size: tuple[int, int] = (100, 30)) -> None:
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]), "-c",
                    str(cwd), command], check=True)


def _keys(name: str, *keys: str) -> None:
    for key in keys:  # one at a time: tmux reads "Escape h" sent together as Alt-h
        subprocess.run(["tmux", "send-keys", "-t", name, key], check=True)
        time.sleep(0.15)


def _exit_code(done: Path) -> str:
    deadline = time.monotonic() + 30
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return done.read_text().strip() if done.exists() else "(still running)"


def test_explore_in_a_real_terminal(toy_session: Path, tmp_path: Path):
    name = f"edgetrace-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    _start(name, _command(f"explore '{toy_session}'", done), tmp_path)
    try:
        screen = _wait_for(name, "sealed")  # the first screen may come before the scan ends
        assert "toy.ets" in screen and "traces" in screen
        _keys(name, "Enter")
        screen = _wait_for(name, "critical path")
        _keys(name, "v")
        screen = _wait_for(name, "event (causal order)")
        _keys(name, "?")
        _wait_for(name, "[trace list]")
        _keys(name, "Escape")
        _wait_until_gone(name, "[trace list]")
        _keys(name, "q")
        assert _exit_code(done) == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_explore_without_colour_at_80_columns(toy_session: Path, tmp_path: Path):
    """NO_COLOR=1 used to crash as soon as a trace was opened: walk every view with it."""
    name = f"edgetrace-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    _start(name, _command(f"explore '{toy_session}'", done, NO_COLOR="1"), tmp_path, (80, 24))
    try:
        screen = _wait_for(name, "traces")
        assert "quit" in screen.splitlines()[-1] and "help" in screen.splitlines()[-1]
        _keys(name, "Enter")
        _wait_for(name, "critical path")
        _keys(name, "v")
        _wait_for(name, "event (causal order)")
        _keys(name, "x")
        _wait_for(name, "causal view around")
        _keys(name, "Escape", "Escape", "f")
        _wait_for(name, "LINK sender")
        _keys(name, "Escape", "h")
        _wait_for(name, "more traces")
        _keys(name, "Escape", "?")
        _wait_for(name, "[trace list]")
        _keys(name, "Escape")
        _wait_until_gone(name, "[trace list]")  # (q would close the help, not quit)
        _keys(name, "q")
        assert _exit_code(done) == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


@pytest.mark.parametrize("what", ["flipped byte", "zeroed stretch", "start 2**64-1"])
def test_damaged_session_in_a_real_terminal(toy_session: Path, tmp_path: Path, what: str):
    """Damage found by the scan inside the app (issue 14, defect 10): one line, exit 2."""
    from sessions import damaged

    bad = damaged(toy_session, tmp_path)[what]
    name = f"edgetrace-{uuid.uuid4().hex[:8]}"
    done, err = tmp_path / "exit-code", tmp_path / "stderr"
    _start(name, _command(f"explore '{bad}' 2> '{err}'", done), tmp_path)
    try:
        assert _exit_code(done) == "2"
        text = err.read_text()
        assert text.count("\n") == 1 and "edgetrace: error:" in text and str(bad) in text
        assert "Traceback" not in text
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
