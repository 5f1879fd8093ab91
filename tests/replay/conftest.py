"""Fixtures: a recorded session of the toy app, made by running it on a simulated grid."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def record_toy(path: Path, *, seed: int = 1, count: int = 30) -> Path:
    import toyapp

    return toyapp.record(path, seed=seed, count=count)


@pytest.fixture
def toy_session(tmp_path: Path) -> Path:
    return record_toy(tmp_path / "toy.ets")
