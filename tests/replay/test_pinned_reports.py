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
    "faithful": ([], 0, "c7a460c9568543160df7aa1e2a1966dc450eb46ee8f12e6d5aa2c9d52be5057e"),
    "state-latency": (["--faults", str(SCENARIO / "faults" / "state-latency.toml")], 1,
                      "e1d323002e8c39d91fe853ec6c3b5863bfe1a3c55f21699890efdd9714071e28"),
    "fixed-policy": (["--faults", str(SCENARIO / "faults" / "state-latency.toml"),
                      "--policy", f"spray_policy={SCENARIO / 'policies' / 'spray_policy_fixed.rego'}"], 0,
                     "bc3cd5649ee4cc867a5cd976e0b24fb8eb6e8ce29a231d512794d580d2dd75cd"),
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_replay_report_is_pinned(case, tmp_path, monkeypatch, capsysbinary):
    args, code, digest = PINNED[case]
    shutil.copy(DATA / "agri-demo.ets", tmp_path / "agri-demo.ets")
    monkeypatch.chdir(tmp_path)  # the report names the session as given on the command line
    assert main(["replay", "agri-demo.ets", *args, "--json"]) == code
    out = capsysbinary.readouterr().out
    assert hashlib.sha256(out).hexdigest() == digest
