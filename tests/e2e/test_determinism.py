"""Determinism stress: four apps recorded live replay 100 %, and every replay repeats byte for byte.

agri (ONNX generative model, Rego), swarm (peer-to-peer gossip, a race) and orchard (a fresh app
written from the docs: `ctx.now()` stored in state and messages, `ctx.rng`, call timeouts with a
retry, a lease table in `ctx.local`) and relay (also written from the docs: start-up handlers,
gossip between sensors, a coordinator holding state over a lossy link). Each is recorded as real processes on loopback; the
faithful replay must reproduce every step, and replays under a probabilistic plan with a crash
must give identical reports run after run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent

APPS = {
    "agri": ("agri", "crash(node=hub, at=3s, restart=3.5s); drop(p=0.1); latency(op=state.*, delay=uniform(0s,2s), p=0.3)"),
    "swarm": ("swarm", "crash(node=drone-02, at=1s, restart=2s); drop(p=0.2); jitter(amount=300ms)"),
    "orchard": ("./orchard", "crash(node=base, at=0.8s, restart=1.1s); drop(p=0.1); latency(delay=300ms, p=0.3)"),
    # written from the docs alone: start-up handlers live, gossip, a lossy link, state on a coordinator
    "relay": ("./relay", "crash(node=coord, at=1s, restart=1.3s); drop(p=0.1); latency(delay=200ms, p=0.3)"),
}


def _edgetrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    return subprocess.run([sys.executable, "-m", "edgetrace", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("determinism")
    shutil.copytree(HERE / "orchard", root / "orchard")
    shutil.copytree(HERE / "relay", root / "relay")
    found = {}
    for name, (scenario, _) in APPS.items():
        out = root / f"{name}.ets"
        rec = _edgetrace("record", scenario, "--out", str(out), cwd=root)
        assert rec.returncode == 0, rec.stderr
        found[name] = out
    return found


@pytest.mark.parametrize("name", sorted(APPS))
def test_faithful_replay_reproduces_every_recorded_step(recorded: dict[str, Path], name: str) -> None:
    r = _edgetrace("replay", str(recorded[name]), "--json", "--no-default-checks", cwd=recorded[name].parent)
    report = json.loads(r.stdout)
    assert report["fidelity"] == 1.0, [t["first_divergence"]["description"] for t in report["traces"][:3]]
    assert r.returncode == 0


@pytest.mark.parametrize("name", sorted(APPS))
def test_replays_under_faults_repeat_byte_for_byte(recorded: dict[str, Path], name: str) -> None:
    args = ["replay", str(recorded[name]), "--fault", APPS[name][1], "--seed", "11", "--json"]
    first, second = (_edgetrace(*args, cwd=recorded[name].parent) for _ in range(2))
    assert first.returncode in (0, 1), first.stderr
    assert json.loads(first.stdout)["faults_applied"] > 0
    assert first.stdout == second.stdout  # different processes, different PYTHONHASHSEED
