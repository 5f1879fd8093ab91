"""Fixtures: small recorded and replayed sessions of the toy app, built in seconds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "replay"))
sys.path.insert(0, str(HERE.parents[1] / "bench"))


def record_toy(path: Path, *, seed: int = 1, count: int = 12) -> Path:
    import toyapp

    return toyapp.record(path, seed=seed, count=count)


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tui")


@pytest.fixture(scope="session")
def toy_session(toy_dir: Path) -> Path:
    return record_toy(toy_dir / "toy.ets")


@pytest.fixture(scope="session")
def toy_replayed(toy_session: Path, toy_dir: Path) -> Path:
    """The toy session replayed with a 2 s state write: the motivating bug, in small."""
    import toyapp

    from edgetrace.replay import replay_session

    report, replayer, run = replay_session(toy_session, faults=["latency(op=state.put, delay=2s)"],
                                           app=toyapp.app, seed=3)
    return replayer.save(run, report, toy_dir / "toy-replayed.ets")
