"""Packages: everything under `edgetrace/`, and one optional C extension.

`agents/`, `replay/`, `tui/` and `scenarios/` stay visible at the root of the repository and
are reached from the core as `edgetrace/agents -> ../agents` (symlinks), so a checkout imports
as it installs: `python -m pytest`, `python -m edgetrace`, ruff and mypy all see one package
`edgetrace`, and nothing claims a generic top-level name in site-packages. The wheel holds
real files (setuptools follows the links).

`edgetrace._recscan` (the explorer's scan of records frames into columns) is built when a C
compiler is there and skipped when not (`optional`): every caller falls back to the Python
path, which is the definition it is tested against. In a checkout, build it in place with
`python setup.py build_ext --inplace`.
"""

from setuptools import Extension, find_packages, setup

setup(
    packages=find_packages(include=["edgetrace", "edgetrace.*"]),
    ext_modules=[Extension("edgetrace._recscan", ["edgetrace/_recscan.c"], optional=True,
                           extra_compile_args=["-O2"])],
)
