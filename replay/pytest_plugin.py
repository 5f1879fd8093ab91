"""pytest plugin (entry point `pytest11`): fault-injection fixtures for users' pipelines.

Importing this module must stay cheap: onnxruntime, regopy and textual are imported only
inside fixtures and hooks that need them.
"""

from __future__ import annotations

from typing import Any


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("edgetrace", "edgetrace fault injection")
    group.addoption("--edgetrace-seed", type=int, default=None,
                    help="seed for edgetrace grids and replays (overrides markers)")
    group.addoption("--edgetrace-seeds", type=int, default=None,
                    help="run edgetrace-seeded tests for this many seeds (overrides markers)")
    group.addoption("--edgetrace-save", default=None,
                    help="folder where sessions of failing edgetrace tests are saved")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "edgetrace_seeds(n_or_range): run the test once per seed")
    config.addinivalue_line("markers", "edgetrace_faults(*specs): fault specs applied to the edgetrace grid")
