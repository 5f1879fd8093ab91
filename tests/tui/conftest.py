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
    from edgetrace.replay import SimGrid

    from edgetrace import Manifest, SessionWriter

    grid = SimGrid(toyapp.app, toyapp.NODES, seed=seed, profile=toyapp.PROFILE)
    run = grid.run(toyapp.inputs(count), until_ns=60_000_000_000)
    manifest = Manifest(app="toy", app_ref="toyapp:app", nodes=run.nodes, seed=seed,
                        meta={"grid": toyapp.PROFILE.to_dict()})
    with SessionWriter(path, manifest) as w:
        for sha in sorted(run.blobs):
            w.put_blob(run.blobs[sha], sha)
        w.append(run.spans)
        w.seal()
    return path


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
