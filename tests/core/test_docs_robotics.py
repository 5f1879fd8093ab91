"""docs/robotics.md runs as written: its bag writer, its scenario reading that bag, its MCAP reader."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from edgetrace.agents import load_scenario
from edgetrace.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "robotics.md").read_text()
DEMO = ROOT / "tests" / "data" / "agri-demo.ets"


def _block(name: str) -> str:
    (found,) = re.findall(rf"```python\n(# {re.escape(name)}\n.*?)```", DOC, re.S)
    return found


def test_the_bag_and_scenario_of_the_docs_work(tmp_path):
    rover = tmp_path / "rover"
    rover.mkdir()
    (rover / "make_bag.py").write_text(_block("make_bag.py"))
    (rover / "scenario.py").write_text(_block("rover/scenario.py"))
    done = subprocess.run([sys.executable, "make_bag.py"], cwd=rover, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    scenario = load_scenario(str(rover))
    inputs = scenario.inputs(0, 1)
    assert [(x.at, x.node, x.topic, x.payload["data"]) for x in inputs] == [
        (0.0, "rover-1", "frame", "clear soil"), (0.02, "rover-1", "frame", "a thistle by the fence"),
        (0.04, "rover-1", "frame", "clear soil")]


def test_the_mcap_reader_of_the_docs_reads_an_export(tmp_path, capsys):
    out = tmp_path / "run.mcap"
    assert main(["export", str(DEMO), "--mcap", str(out)]) == 0
    capsys.readouterr()
    (tmp_path / "read_mcap.py").write_text(_block("read_mcap.py"))
    done = subprocess.run([sys.executable, "read_mcap.py", str(out)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("/tractor-01/decide spray_policy → ") for line in lines)
    assert "attached: models/event_extractor.onnx" in done.stdout
