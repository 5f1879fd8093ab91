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
    "faithful": ([], 0, "5f048f46a3cbee8a480fff8bf1e48c32d22e96626b64db633ab684c4484a5eb6"),
    "state-latency": (["--faults", str(SCENARIO / "faults" / "state-latency.toml")], 1,
                      "e5c4e52bde9655af302b3be3a6b0aeef1af552f306c8fd5314405eb8dfad72cf"),
    "fixed-policy": (["--faults", str(SCENARIO / "faults" / "state-latency.toml"),
                      "--policy", f"spray_policy={SCENARIO / 'policies' / 'spray_policy_fixed.rego'}"], 0,
                     "24cd6a3cd29971e71db91c3e999987f4bec3f930e1603f6c92fed187d5216940"),
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_replay_report_is_pinned(case, tmp_path, monkeypatch, capsysbinary):
    args, code, digest = PINNED[case]
    shutil.copy(DATA / "agri-demo.ets", tmp_path / "agri-demo.ets")
    monkeypatch.chdir(tmp_path)  # the report names the session as given on the command line
    assert main(["replay", "agri-demo.ets", *args, "--json"]) == code
    out = capsysbinary.readouterr().out
    assert hashlib.sha256(out).hexdigest() == digest
