"""Fixtures: a recorded session of the toy app, made by running it on a simulated grid."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def record_toy(path: Path, *, seed: int = 1, count: int = 30) -> Path:
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


@pytest.fixture
def toy_session(tmp_path: Path) -> Path:
    return record_toy(tmp_path / "toy.ets")
