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
    "faithful": ([], 0, "86a5e6ca683371d9274f20409ae382c51446ecd758bba1265751ad1a76479721"),
    "state-latency": (["--faults", str(SCENARIO / "faults" / "state-latency.toml")], 1,
                      "da0406c5780d6bdd08da5ac098dc05be1039e27f77d9f8c5c4a0a208c7b3174d"),
    "fixed-policy": (["--faults", str(SCENARIO / "faults" / "state-latency.toml"),
                      "--policy", f"spray_policy={SCENARIO / 'policies' / 'spray_policy_fixed.rego'}"], 0,
                     "cc115da48604adfeae0627c23b314f11c57612f331c7fdadb3f7c18d5647e456"),
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_replay_report_is_pinned(case, tmp_path, monkeypatch, capsysbinary):
    args, code, digest = PINNED[case]
    shutil.copy(DATA / "agri-demo.ets", tmp_path / "agri-demo.ets")
    monkeypatch.chdir(tmp_path)  # the report names the session as given on the command line
    assert main(["replay", "agri-demo.ets", *args, "--json"]) == code
    out = capsysbinary.readouterr().out
    assert hashlib.sha256(out).hexdigest() == digest
