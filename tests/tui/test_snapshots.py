"""SVG snapshots at 80x24 (regenerate with `pytest tests/tui --snapshot-update`).

The toy session comes from a seeded simulation, so every span, time and id is the same on
every run; the screens show no wall-clock time.
"""

from __future__ import annotations

from pathlib import Path

from edgetrace.tui._app import ExplorerApp

SIZE = (80, 24)


def test_trace_list_snapshot(snap_compare, toy_session: Path):
    assert snap_compare(ExplorerApp(toy_session, follow=False), terminal_size=SIZE, press=["j"])


def test_spacetime_snapshot(snap_compare, toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    assert snap_compare(app, terminal_size=SIZE, press=["enter", "v", "j", "j", "j"])


def test_diff_snapshot(snap_compare, toy_session: Path, toy_replayed: Path):
    app = ExplorerApp(toy_session, against=toy_replayed, follow=False)
    assert snap_compare(app, terminal_size=SIZE, press=["d"])
