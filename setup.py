"""Packages: everything under `edgetrace/`.

`agents/`, `replay/`, `tui/` and `scenarios/` stay visible at the root of the repository and
are reached from the core as `edgetrace/agents -> ../agents` (symlinks), so a checkout imports
as it installs: `python -m pytest`, `python -m edgetrace`, ruff and mypy all see one package
`edgetrace`, and nothing claims a generic top-level name in site-packages. The wheel holds
real files (setuptools follows the links).
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["edgetrace", "edgetrace.*"]))
