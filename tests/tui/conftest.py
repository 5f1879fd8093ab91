"""Fixtures: small recorded and replayed sessions of the toy app, built in seconds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "replay"))
sys.path.insert(0, str(HERE.parents[1] / "bench"))
sys.path.insert(0, str(HERE))


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


@pytest.fixture(scope="session")
def skewed_session(toy_dir: Path) -> Path:
    from sessions import skewed_session

    return skewed_session(toy_dir / "skewed.ets")


@pytest.fixture(scope="session")
def race_session(toy_dir: Path) -> Path:
    from sessions import race_session

    return race_session(toy_dir / "race.ets")


@pytest.fixture(scope="session")
def otel_session(toy_dir: Path) -> Path:
    from sessions import otel_session

    return otel_session(toy_dir / "otel.ets")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "app_errors: the test expects the explorer to end with an error")


@pytest.fixture(autouse=True)
def _no_silent_app_errors(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """An error inside the app ends it (exit 2 or 3) rather than raising into the test:
    fail the test unless it expects one."""
    from edgetrace.tui._app import ExplorerApp

    seen: list[BaseException] = []
    original = ExplorerApp._handle_exception

    def recording(self: ExplorerApp, error: Exception) -> None:
        seen.append(error)
        original(self, error)

    monkeypatch.setattr(ExplorerApp, "_handle_exception", recording)
    yield
    if not request.node.get_closest_marker("app_errors"):
        assert not seen, f"the explorer stopped on an error: {seen[0]!r}"
