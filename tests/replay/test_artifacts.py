"""Swapped artifacts are checked when the replay starts, and Python functions can stand in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgetrace.agents import App
from edgetrace.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def session(tmp_path, monkeypatch):
    shutil.copy(DATA / "agri-demo.ets", tmp_path / "s.ets")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "s.ets"


def test_a_rego_file_that_does_not_compile_is_one_line_and_exit_2(session, capfd):
    Path("bad.rego").write_text("package x\n\ndecision := input.a +\n")
    assert main(["replay", "s.ets", "--policy", "spray_policy=bad.rego", "--json"]) == 2
    out, err = capfd.readouterr()
    assert out == ""  # nothing from regopy on stdout: --json stays parseable
    assert len(err.strip().splitlines()) == 1
    assert "bad.rego does not compile: Invalid arithmetic operator" in err


def test_a_model_file_that_does_not_load_is_one_line_and_exit_2(session, capfd):
    Path("bad.onnx").write_bytes(b"not a model")
    assert main(["replay", "s.ets", "--model", "event_extractor=bad.onnx", "--json"]) == 2
    out, err = capfd.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "bad.onnx" in err


def test_a_python_policy_swapped_in_from_the_command_line(session, capfd):
    Path("policies.py").write_text(
        "def never_spray(doc):\n    return {'decision': 'skip', 'fired': ['never']}\n")
    assert main(["replay", "s.ets", "--policy", "spray_policy=policies.py:never_spray", "--json"]) == 0
    report = json.loads(capfd.readouterr().out)
    assert report["violations"] == [] and "spray_policy" in report["substitutions"]["policies"]
    assert all(d["value"] == "skip" for t in report["traces"] for d in t["decisions"]["replayed"]
               if d["step"] == "decide")


def test_a_python_policy_needs_an_importable_function(session, capfd):
    assert main(["replay", "s.ets", "--policy", "spray_policy=nosuchmodule:f"]) == 2
    assert "cannot import 'nosuchmodule'" in capfd.readouterr().err


def test_policies_declared_positionally_and_swapped_from_a_fixture_like_call():
    from edgetrace.replay import replay_session

    app = App("p")
    app.policy("grant", lambda doc: {"decision": "yes"})  # positional: a function, not a path
    assert app.policies["grant"].func is not None
    report, _, _ = replay_session(DATA / "agri-demo.ets", policies={"spray_policy": lambda doc: "skip"},
                                  default_checks=True)
    assert report.violations == [] and report.policies["spray_policy"]
