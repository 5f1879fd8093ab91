"""SVG snapshots at 80x24 and 200x50 (regenerate with `pytest tests/tui --snapshot-update`).

The toy session comes from a seeded simulation, so every span, time and id is the same on
every run; the screens show no wall-clock time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetrace.tui._app import ExplorerApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]


@pytest.mark.parametrize("size", SIZES)
def test_trace_list_snapshot(snap_compare, toy_session: Path, size: tuple[int, int]):
    assert snap_compare(ExplorerApp(toy_session, follow=False), terminal_size=size, press=["j"])


@pytest.mark.parametrize("size", SIZES)
def test_trace_tree_snapshot(snap_compare, toy_session: Path, size: tuple[int, int]):
    app = ExplorerApp(toy_session, follow=False)
    assert snap_compare(app, terminal_size=size, press=["enter", "j", "j", "j"])


def test_spacetime_snapshot(snap_compare, toy_session: Path):
    app = ExplorerApp(toy_session, follow=False)
    assert snap_compare(app, terminal_size=(80, 24), press=["enter", "v", "j", "j", "j"])


@pytest.mark.parametrize("size", SIZES)
def test_causal_view_snapshot(snap_compare, toy_session: Path, size: tuple[int, int]):
    app = ExplorerApp(toy_session, follow=False, focus=["t-1:4"])
    assert snap_compare(app, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_fleet_view_snapshot(snap_compare, toy_session: Path, size: tuple[int, int]):
    assert snap_compare(ExplorerApp(toy_session, follow=False), terminal_size=size, press=["f", "j"])


@pytest.mark.parametrize("size", SIZES)
def test_diff_snapshot(snap_compare, toy_session: Path, toy_replayed: Path, size: tuple[int, int]):
    app = ExplorerApp(toy_session, against=toy_replayed, follow=False)
    assert snap_compare(app, terminal_size=size, press=["d"])


def test_duration_chart_snapshot(snap_compare, toy_session: Path):
    assert snap_compare(ExplorerApp(toy_session, follow=False), terminal_size=(80, 24), press=["h", "right"])
