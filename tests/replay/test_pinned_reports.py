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
    "faithful": ([], 0, "544e3695230eeb01a9797749119c68d124cfd130199a6b5249ca886f053e7e5b"),
    "state-latency": (["--faults", str(SCENARIO / "faults" / "state-latency.toml")], 1,
                      "14850fb5e2692a80f02f9aeedd0358150aa8a6d7e559c937c5fbbc85273831ac"),
    "fixed-policy": (["--faults", str(SCENARIO / "faults" / "state-latency.toml"),
                      "--policy", f"spray_policy={SCENARIO / 'policies' / 'spray_policy_fixed.rego'}"], 0,
                     "2786b86212c30dfa3e2058c816def1e9f0d3e05708035a346a3fa27e9da1d5f8"),
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_replay_report_is_pinned(case, tmp_path, monkeypatch, capsysbinary):
    args, code, digest = PINNED[case]
    shutil.copy(DATA / "agri-demo.ets", tmp_path / "agri-demo.ets")
    monkeypatch.chdir(tmp_path)  # the report names the session as given on the command line
    assert main(["replay", "agri-demo.ets", *args, "--json"]) == code
    out = capsysbinary.readouterr().out
    assert hashlib.sha256(out).hexdigest() == digest
