"""The replay's text ends with the explorer command that opens its first finding's cut."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from edgetrace.tui._finding import finding_cut

DATA = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"
AGRI = Path(__import__("edgetrace.scenarios.agri", fromlist=["x"]).__file__).resolve().parent
SLOW = str(AGRI / "faults" / "state-latency.toml")


def _replay(*args: str, cwd: Path) -> str:
    r = subprocess.run([sys.executable, "-m", "edgetrace", "replay", str(DATA), "--faults", SLOW, *args],
                       capture_output=True, text=True, cwd=cwd, timeout=300)
    assert r.returncode == 1, r.stderr  # the invariant is violated
    return r.stdout


def test_a_saved_replay_prints_the_explore_command_for_its_first_violation(tmp_path: Path) -> None:
    out = tmp_path / "slow.ets"
    text = _replay("--save", str(out), cwd=tmp_path)
    line = next(line for line in text.splitlines() if "--why" in line)
    words = shlex.split(line)
    assert words[:3] == ["edgetrace", "explore", str(out)] and words[3] == "--why"
    cut = finding_cut(out, words[4])  # the command names a step the saved session holds
    assert cut[0] == words[4] and len(cut) > 3


def test_without_save_it_says_how_to_get_there(tmp_path: Path) -> None:
    text = _replay(cwd=tmp_path)
    assert "add --save OUT, then edgetrace explore OUT --why tractor-" in text
