"""docs/why.md shows real output: every command runs, and every line it shows is printed."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DOC = (HERE.parents[1] / "docs" / "why.md").read_text(encoding="utf-8")
AGRI = Path(__import__("edgetrace.scenarios.agri", fromlist=["x"]).__file__).resolve().parent


def _examples() -> list[tuple[str, list[str]]]:
    found = []
    for block in re.findall(r"```text\n(.*?)```", DOC, re.S):
        command, lines = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command:
                    found.append((command, lines))
                command, lines = line[2:], []
            elif line.strip():
                lines.append(line)
        if command:
            found.append((command, lines))
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import leaseapp
    import test_races

    from edgetrace.replay.testing import GridHarness

    root = tmp_path_factory.mktemp("why")
    leaseapp.feed(GridHarness(leaseapp.app, leaseapp.NODES, profile=leaseapp.PROFILE,
                              faults=["drop(link=drone-1->base, topic=renew)"])).run(until="5s").save(root / "lost.ets")
    test_races._session(root)
    shutil.copy(HERE.parent / "data" / "agri-demo.ets", root / "agri-demo.ets")
    shutil.copy(AGRI / "policies" / "spray_policy_fixed.rego", root / "spray_policy_fixed.rego")
    # the page's sessions were recorded here, so they are on this user's trust list, as
    # `edgetrace record` leaves them: the commands need no --app
    from edgetrace import Session
    from edgetrace._trust import TRUST_FILE, remember_session

    for name in ("lost.ets", "door.ets"):
        remember_session(Session(root / name).manifest, path=root / "data" / TRUST_FILE)
    return root


def test_the_page_has_its_examples():
    assert len(_examples()) == 5


@pytest.mark.parametrize(("command", "lines"), _examples(), ids=[c[:60] for c, _ in _examples()])
def test_each_example_prints_what_the_page_shows(workdir: Path, command: str, lines: list[str]) -> None:
    argv = shlex.split(command)
    assert argv[0] == "edgetrace"
    r = subprocess.run([sys.executable, "-m", "edgetrace", *argv[1:]], capture_output=True, text=True, cwd=workdir,
                       timeout=300, env={**os.environ, "EDGETRACE_DATA": str(workdir / "data")})
    assert r.returncode in (0, 1), r.stderr
    printed = r.stdout.splitlines()
    at = 0
    for line in lines:  # in order, each somewhere after the previous
        assert line in printed[at:], f"not printed (in order): {line!r}\n--- got:\n{r.stdout[:4000]}"
        at = printed.index(line, at) + 1
