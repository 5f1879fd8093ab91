"""Dependencies point one way: core ← agents ← replay/tui (the CLI and the package root above all)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {  # folder -> what it must not import
    "edgetrace": ("edgetrace.agents", "edgetrace.replay", "edgetrace.tui", "edgetrace.scenarios"),
    "agents": ("edgetrace.replay", "edgetrace.tui", "edgetrace.cli"),
    "replay": ("edgetrace.tui", "edgetrace.cli"),
    "tui": ("edgetrace.cli",),
}
ABOVE = {"edgetrace/__init__.py"}  # lazy re-exports of App/Context


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_no_import_points_up(folder):
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_symlink() or any(p.is_symlink() for p in path.parents) or rel in ABOVE:
            continue
        if folder == "edgetrace" and rel.startswith("edgetrace/cli/"):
            continue  # the CLI dispatches to every part
        bad += [f"{rel}: {m}" for m in _imports(path) if m.startswith(LAYERS[folder])]
    assert not bad, "\n".join(bad)
