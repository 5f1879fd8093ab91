"""Hostile but valid session contents reach no terminal raw and crash no reader (defect 11)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace import Manifest, SessionWriter, Span, SpanKind, Status

ROOT = Path(__file__).resolve().parents[2]
TRACE = "\x1b[2J\x1b[H"  # clear the screen, cursor home
NODE = "n\x1b]0;pwned\x07"  # retitle the window
RAW = ("\x1b", "\x07", "\u202e", "\x9b")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetrace", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def _session(path: Path, meta: dict[str, object] | None = None) -> Path:
    spans = [
        Span(node=NODE, seq=1, kind=SpanKind.INPUT, name="\u202eyarps", trace=TRACE, attrs={"k": "\x9b31m"}),
        Span(node=NODE, seq=2, kind=SpanKind.ACT, name="spray", trace=TRACE, cause=f"{NODE}:1",
             status=Status.ERROR, error="\x1b[31mred\x1b[0m"),
    ]
    with SessionWriter(path, Manifest(session_id="h", app="\x1b[5mapp", scenario="\x1b]8;;http://x\x07",
                                      nodes=[NODE], meta=meta or {})) as w:
        w.append(spans)
        w.seal()
    return path


def test_printable_escapes_controls_and_invisible_format_characters():
    from edgetrace._text import printable

    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("\u202e\u2066x\u200b\ufeff") == "\\u202e\\u2066x\\u200b\\ufeff"
    assert printable("line\nnext\ttab\x7f\x85") == "line\\x0anext\\x09tab\\x7f\\x85"
    assert printable("plain ünïcødé · →") == "plain ünïcødé · →"
    assert printable("x" * 50, limit=10) == "x" * 9 + "…"


@pytest.mark.parametrize("verb", [["show"], ["show", "--trace", TRACE], ["diff", "{path}"]])
def test_human_output_carries_no_raw_escape(tmp_path, verb):
    path = _session(tmp_path / "h.ets")
    args = [a.replace("{path}", str(path)) for a in verb]
    r = _cli(args[0], str(path), *args[1:], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for ch in RAW:
        assert ch not in r.stdout and ch not in r.stderr, (repr(ch), r.stdout)
    if verb[0] == "show":
        assert "\\x1b[2J" in r.stdout


def test_json_output_keeps_the_values_exactly(tmp_path):
    path = _session(tmp_path / "h.ets")
    r = _cli("show", str(path), "--trace", TRACE, "--json", cwd=tmp_path)
    assert r.returncode == 0
    assert "\x1b" not in r.stdout  # JSON escapes it …
    assert json.loads(r.stdout)["trace"] == TRACE  # … and a program reads the value as it is


def test_error_lines_quote_session_text_safely(tmp_path):
    path = _session(tmp_path / "h.ets")
    r = _cli("show", str(path), "--trace", "\x1b[2Jnope", cwd=tmp_path)
    assert r.returncode == 2 and "\x1b" not in r.stderr and "\\x1b[2Jnope" in r.stderr


@pytest.mark.parametrize("grid", [{"links": 5}, {"default": {"loss": "lots"}}, {"default": [1, 2]},
                                  {"links": [{"latency_max": 2**63}]}, {"default": {"jitter": -1}}])
def test_a_malformed_grid_in_the_manifest_is_exit_2(tmp_path, grid):
    path = _session(tmp_path / "h.ets", meta={"grid": grid})
    r = _cli("replay", str(path), "--app", str(ROOT / "tests/replay/toyapp.py") + ":app", "--json", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "malformed grid profile" in r.stderr and "internal error" not in r.stderr


def _replayable(path: Path) -> tuple[Path, str]:
    """A toy fleet session whose input traces carry escapes, and the app that replays it."""
    sys.path.insert(0, str(ROOT / "tests" / "replay"))
    import toyapp

    from edgetrace.replay.testing import GridHarness

    grid = GridHarness(toyapp.app, toyapp.NODES, profile={"default": {"latency": "10ms"}}, seed=1)
    for i in range(6):
        grid.input(f"t-{i % 3}", "frame", {"n": i, "weed": True}, at=i * 0.4, trace=f"f{TRACE}{i}\u202e")
    return grid.run(until="10s").save(path), str(ROOT / "tests" / "replay" / "toyapp.py") + ":app"


@pytest.mark.parametrize("verb", [["replay", "--check", "never act(spray)"],
                                  ["sweep", "--fault", "drop(op=state.*, p=0.5)", "--check", "never act(spray)",
                                   "--seeds", "2", "--jobs", "1"],
                                  ["query", "select trace, node from spans where kind = 'input'"]])
def test_replay_sweep_and_query_reports_carry_no_raw_escape(tmp_path, verb):
    path, app = _replayable(tmp_path / "h.ets")
    args = [verb[0], str(path), *(["--app", app] if verb[0] != "query" else []), *verb[1:]]
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    for ch in RAW:
        assert ch not in r.stdout and ch not in r.stderr, (repr(ch), r.stdout[:2000])
    assert "\\x1b[2J" in r.stdout
