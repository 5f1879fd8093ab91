"""Every `edgetrace VERB --flag` the docs and README show exists, so the docs cannot drift from the CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from edgetrace.cli._main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for page in PAGES:
        for block in re.findall(r"```(?:bash|sh|)\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                for part in line.split("&&"):
                    part = part.split("#")[0].strip()
                    if part.startswith("edgetrace ") and not part.startswith("edgetrace: "):
                        found.append((page.name, shlex.split(part)))
    return found


COMMANDS = _commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 15


@pytest.mark.parametrize(("page", "argv"), COMMANDS, ids=[" ".join(a)[:60] for _, a in COMMANDS])
def test_documented_command_parses(page, argv):
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if argv[1].startswith("-"):  # a top-level flag: edgetrace --help, edgetrace -V
        assert argv[1] in {o for a in parser._actions for o in a.option_strings}, f"{page}: {' '.join(argv)}"
        return
    assert argv[1] in verbs, f"{page}: unknown verb in {' '.join(argv)}"
    known = {opt for action in verbs[argv[1]]._actions for opt in action.option_strings}
    for arg in argv[2:]:
        if arg.startswith("--"):
            assert arg.split("=")[0] in known, f"{page}: {argv[1]} has no option {arg}"
