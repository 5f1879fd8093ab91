"""Maps the top-level folders onto one import namespace.

`agents/`, `replay/`, `tui/` and `scenarios/` stay visible at the root of the repository
but install as `edgetrace.agents`, `edgetrace.replay`, ... so nothing claims a generic
top-level name in site-packages. The package list is computed so new subpackages need no
edit here.
"""

from setuptools import find_packages, setup

ROOTS = {
    "edgetrace": "edgetrace",
    "edgetrace.agents": "agents",
    "edgetrace.replay": "replay",
    "edgetrace.tui": "tui",
    "edgetrace.scenarios": "scenarios",
}


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return sorted(set(found))


setup(packages=_packages(), package_dir=ROOTS)
