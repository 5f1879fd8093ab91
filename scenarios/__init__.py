"""Runnable example grids, installed with the package so `edgetrace demo` works anywhere."""

from __future__ import annotations

from importlib import resources

__all__ = ["available"]


def available() -> list[str]:
    """Names of the scenarios shipped with edgetrace."""
    root = resources.files(__name__)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "scenario.py").is_file())
