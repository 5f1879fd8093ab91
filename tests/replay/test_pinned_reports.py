"""Replay reports of a fixed recorded agri session, pinned by hash.

The session in tests/data was recorded once with `edgetrace record agri --seed 0`. Its replay
reports must stay byte-identical across refactors of the runtime, the simulator and the fault
catalogue: a change in any of these hashes is a change of behaviour, and must be made on
purpose (say why in the commit) rather than slip in with a restructuring.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from edgetrace.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
SCENARIO = Path(__import__("edgetrace.scenarios.agri", fromlist=["x"]).__file__).resolve().parent

PINNED = {
    "faithful": ([], 0, "050abd1445c5d133ee5caeffbc7caa4c607bd9411de4ae7a9004bedd6b489b10"),
    "state-latency": (["--faults", str(SCENARIO / "faults" / "state-latency.toml")], 1,
                      "8b4cbcbd6844c4166b6ce274f146e66c0198b9697d7756eaef27aab80904fc34"),
    "fixed-policy": (["--faults", str(SCENARIO / "faults" / "state-latency.toml"),
                      "--policy", f"spray_policy={SCENARIO / 'policies' / 'spray_policy_fixed.rego'}"], 0,
                     "a65ec17d50e043217537e82fedf05735b24d6b9c0235e438fbc940307917098a"),
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_replay_report_is_pinned(case, tmp_path, monkeypatch, capsysbinary):
    args, code, digest = PINNED[case]
    shutil.copy(DATA / "agri-demo.ets", tmp_path / "agri-demo.ets")
    monkeypatch.chdir(tmp_path)  # the report names the session as given on the command line
    assert main(["replay", "agri-demo.ets", *args, "--json"]) == code
    out = capsysbinary.readouterr().out
    assert hashlib.sha256(out).hexdigest() == digest
