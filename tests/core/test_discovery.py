"""One default data folder: the hub stores sessions where the explorer's picker looks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgetrace._discovery import DATA_ENV, data_dir, find_sessions
from edgetrace.cli._main import build_parser


def test_data_dir_is_the_env_folder_else_the_user_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".local" / "share" / "edgetrace"


@pytest.mark.parametrize("env", [True, False])
def test_the_hub_stores_sessions_in_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: bool):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if env:
        monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    else:
        monkeypatch.delenv(DATA_ENV, raising=False)
    args = build_parser().parse_args(["hub"])
    assert Path(args.data) == data_dir()


def test_find_sessions_lists_session_files_newest_first(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    old, new, other = a / "old.ets", b / "new.ets", a / "notes.txt"
    for i, p in enumerate((old, new, other)):
        p.write_bytes(b"")
        os.utime(p, (1_000 + i, 1_000 + i))
    (a / "folder.ets").mkdir()  # not a file
    assert find_sessions(a, b, tmp_path / "missing") == [new.resolve(), old.resolve()]
    assert find_sessions(a, a) == [old.resolve()]  # a folder given twice lists each file once
