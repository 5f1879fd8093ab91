"""Packages: everything under `edgetrace/`, and two optional C extensions.

`agents/`, `replay/`, `tui/` and `scenarios/` stay visible at the root of the repository and
are reached from the core as `edgetrace/agents -> ../agents` (symlinks), so a checkout imports
as it installs: `python -m pytest`, `python -m edgetrace`, ruff and mypy all see one package
`edgetrace`, and nothing claims a generic top-level name in site-packages. The wheel holds
real files (setuptools follows the links).

`edgetrace._recscan` (the explorer's scan of records frames into columns) and `edgetrace._cindex`
(the causal index of a session read whole) are built when a C compiler is there and skipped
when not (`optional`): every caller falls back to the Python path, which is the definition
each is tested against. In a checkout, build it in place with
`python setup.py build_ext --inplace`.
"""

from setuptools import Extension, find_packages, setup

setup(
    packages=find_packages(include=["edgetrace", "edgetrace.*"]),
    ext_modules=[Extension(name, [f"edgetrace/{name.split('.')[-1]}.c"], optional=True, extra_compile_args=["-O2"])
                 for name in ("edgetrace._recscan", "edgetrace._cindex")],
)
