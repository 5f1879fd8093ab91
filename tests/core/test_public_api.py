"""The public API is exactly what `__all__` says (httpx's test_exported_members is the model).

A name a user can import from a package without an underscore is a promise; one that leaks
in by accident (a helper, a typing import) becomes one without anyone deciding it.
"""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest


def _isort(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["edgetrace", "edgetrace.agents", "edgetrace.replay", "edgetrace.replay.faults"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_every_name_resolves(name):
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__, key=_isort), f"{name}.__all__ is not sorted"
    for member in module.__all__:
        assert getattr(module, member) is not None, f"{name}.{member} does not resolve"


@pytest.mark.parametrize("name", PACKAGES)
def test_nothing_public_leaks_beyond_all(name):
    module = importlib.import_module(name)
    for member in list(module.__all__):
        getattr(module, member)  # resolve lazy names, as a user would
    public = {k for k, v in vars(module).items()
              if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public <= set(module.__all__) | {"__version__"}, f"{name} leaks {sorted(public - set(module.__all__))}"


def test_scenario_types_are_public():
    from edgetrace.agents import GridProfile, LinkProfile, Scenario, ScheduledInput  # noqa: F401
def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_docs_and_shipped_scenarios_import_no_private_module():
    private = re.compile(r"^\s*(?:from|import)\s+(edgetrace(?:\.\w+)*\._\w+)", re.M)
    found = []
    for doc in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        for block in _python_blocks(doc.read_text(encoding="utf-8")):
            found += [f"{doc.name}: {m}" for m in private.findall(block)]
    for source in sorted((ROOT / "scenarios").rglob("*.py")):
        found += [f"{source.relative_to(ROOT)}: {m}" for m in private.findall(source.read_text(encoding="utf-8"))]
    assert not found, "private imports in user-facing code:\n" + "\n".join(found)
