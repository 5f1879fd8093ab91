"""The public API is exactly what `__all__` says (httpx's test_exported_members is the model).

A name a user can import from a package without an underscore is a promise; one that leaks
in by accident (a helper, a typing import) becomes one without anyone deciding it.
"""

from __future__ import annotations

import importlib
import types

import pytest


def _isort(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


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
