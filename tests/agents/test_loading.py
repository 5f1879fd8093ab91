"""Loading the user's app and scenario: their mistakes are theirs, in one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace._errors import ConfigError, UsageError
from edgetrace.agents._scenario import import_ref, load_app, load_scenario

BROKEN_APP = '''from edgetrace.agents import App

app = App("broken", initial_state={"total": 0})  # line 3: not a keyword App takes
'''


def test_an_app_file_that_raises_on_import_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(BROKEN_APP)
    with pytest.raises(ConfigError, match=r"raised TypeError: .*initial_state.* at pipeline\.py:3$"):
        load_app(f"{tmp_path / 'pipeline.py'}:app")


def test_a_module_that_raises_on_import_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "brokenmod_x1.py").write_text("value = 1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"ZeroDivisionError: division by zero at brokenmod_x1\.py:1"):
        import_ref("brokenmod_x1:value")


def test_the_app_s_own_refusals_keep_their_message(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text('from edgetrace.agents import App\napp = App("")\n')
    with pytest.raises(ConfigError, match="an App needs a name"):
        load_app(f"{tmp_path / 'pipeline.py'}:app")


def test_record_of_a_scenario_whose_app_raises_exits_2_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "pipeline.py").write_text(BROKEN_APP)
    (folder / "scenario.py").write_text("from pipeline import app\n")
    r = subprocess.run([sys.executable, "-m", "edgetrace", "record", str(folder), "--out", str(tmp_path / "x.ets")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "TypeError" in lines[0] and "pipeline.py:3" in lines[0]


def test_a_missing_file_is_still_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no file at"):
        load_scenario(str(tmp_path / "nothere.py"))
