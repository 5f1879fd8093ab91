"""docs/writing-an-app.md, followed to the letter: copy the files, record, replay, break, test."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = (Path(__file__).resolve().parents[2] / "docs" / "writing-an-app.md").read_text()
pytestmark = pytest.mark.slow


def _files() -> dict[str, str]:
    found = {}
    for _lang, body in re.findall(r"```(python|rego)\n(.*?)```", DOC, re.S):
        first = body.splitlines()[0]
        m = re.match(r"# (vineyard/[\w.]+)", first)
        if m:
            found[m.group(1)] = body
    return found


def _edgetrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetrace", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def vineyard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reader")
    files = _files()
    assert sorted(files) == ["vineyard/pipeline.py", "vineyard/retardant.rego", "vineyard/scenario.py",
                             "vineyard/test_vineyard.py"]
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    return root


def test_record_replay_break(vineyard: Path) -> None:
    rec = _edgetrace("record", "./vineyard", "--out", "vineyard.ets", cwd=vineyard)
    assert rec.returncode == 0, rec.stderr
    faithful = _edgetrace("replay", "vineyard.ets", "--json", cwd=vineyard)
    assert faithful.returncode == 0, faithful.stdout[-2000:] + faithful.stderr
    assert json.loads(faithful.stdout)["fidelity"] == 1.0
    broken = _edgetrace("replay", "vineyard.ets", "--fault", "latency(op=state.get, delay=1s)", "--save", "slow.ets",
                        "--json", cwd=vineyard)
    assert broken.returncode == 1, broken.stderr
    violations = json.loads(broken.stdout)["violations"]
    assert violations and {v["invariant"] for v in violations} == {"release-only-over-a-confirmed-empty-block"}
    text = _edgetrace("replay", "vineyard.ets", "--fault", "latency(op=state.get, delay=1s)", cwd=vineyard).stdout
    assert "no_state_assume_clear" in text and "release" in text
    assert (vineyard / "slow.ets").is_file()


def test_the_pages_tests_pass_and_fail_as_it_says(vineyard: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_vineyard.py"],
                            capture_output=True, text=True, cwd=vineyard / "vineyard", timeout=300)
    assert "3 passed, 1 xfailed" in result.stdout, result.stdout[-3000:]
