"""Faithful replay reproduces the recording; what-if replays diverge deterministically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import toyapp  # tests/replay is on sys.path (conftest)

from edgetrace import Session
from edgetrace.replay import Replayer

HERE = Path(__file__).resolve().parent


def test_faithful_replay_reproduces_every_step(toy_session):
    report, _run = Replayer(toy_session, app=toyapp.app).run()
    assert report.steps_recorded == len(Session(toy_session).spans)
    assert report.divergences == []
    assert report.fidelity == 1.0
    assert report.exit_code() == 0


def test_faithful_replay_keeps_recorded_losses(toy_session):
    recorded = Session(toy_session)
    timeouts = [s for s in recorded.spans if s.error.startswith("timeout")]
    assert timeouts, "the lossy toy profile should have produced at least one timeout"
    _report, run = Replayer(toy_session, app=toyapp.app).run()
    assert sorted(s.ref for s in run.spans if s.error.startswith("timeout")) == sorted(s.ref for s in timeouts)


def test_a_changed_recording_is_reported_as_divergence(toy_session, tmp_path):
    """Tamper with one decision in the recording: the faithful replay must flag exactly it."""
    import msgspec

    from edgetrace import SessionWriter

    s = Session(toy_session)
    target = next(x for x in s.spans if x.kind.value == "decide" and x.attrs["edgetrace.decision"] == "hold")
    tampered = tmp_path / "tampered.ets"
    with SessionWriter(tampered, s.manifest) as w:
        for sha in s.blob_ids():
            w.put_blob(s.blob(sha), sha)
        w.append([msgspec.structs.replace(x, attrs={**x.attrs, "edgetrace.decision": "spray"})
                  if x.ref == target.ref else x for x in s.spans])
    report, _ = Replayer(tampered, app=toyapp.app).run()
    assert [d.recorded for d in report.divergences if d.kind == "changed"][:1] == [target.ref]
    assert report.traces[0].trace == target.trace
    assert report.exit_code() == 1


def _report_bytes(session: Path, hashseed: str, *extra: str) -> bytes:
    code = (
        "import sys; from edgetrace.replay import replay_session\n"
        f"r, _, _ = replay_session({str(session)!r}, faults={list(extra)!r}, seed=5, app='toyapp:app')\n"
        "sys.stdout.buffer.write(r.to_json())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": hashseed,
           "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, cwd=str(HERE), check=True)
    return out.stdout


@pytest.mark.parametrize("faults", [(), ("latency(op=state.*, delay=900ms)", "drop(link=t-1->hub, p=0.3)")])
def test_report_is_byte_identical_across_processes(toy_session, faults):
    a = _report_bytes(toy_session, "1", *faults)
    b = _report_bytes(toy_session, "987654", *faults)
    assert a == b
    assert b'"fidelity"' in a


def test_report_lists_what_it_checked(toy_session):
    import json

    from edgetrace.replay import replay_session

    report, _, _ = replay_session(toy_session, faults=["latency(op=state.*, delay=2s)"], app=toyapp.app,
                                  checks=["never act(spray) at t-1", "every act(spray) after decide(spray)"])
    data = json.loads(report.to_json())
    counts = {i["name"]: i["violations"] for i in data["invariants"]}
    assert sorted(counts) == ["every act(spray) after decide(spray)", "never act(spray) at t-1"]
    assert counts["never act(spray) at t-1"] > 0 and counts["every act(spray) after decide(spray)"] == 0
    assert "never act(spray) at t-1 ✗" in report.render_text()
    quiet, _, _ = replay_session(toy_session, app=toyapp.app)
    assert "checked no invariants" in quiet.render_text()


def test_a_faithful_replay_of_a_simulated_run_keeps_its_span_refs(tmp_path):
    """Fault records of a simulated recording are replayed as records: refs stay the recording's."""
    import toyapp

    from edgetrace.replay import Replayer
    from edgetrace.replay._invariants import parse_invariant
    from edgetrace.replay.testing import GridHarness

    check = "every act(spray) after input where payload.weed == true"
    grid = GridHarness(toyapp.app, toyapp.NODES, profile={"default": {"latency": "10ms"}}, seed=1,
                       faults=["drop(op=state.*, p=0.2)"])
    run = grid.inputs(toyapp.inputs(10)).run(until="30s")
    printed = [v.span for v in run.violations(check)]
    assert printed and run.find("fault")
    report, replayed = Replayer(run.save(tmp_path / "run.ets"), app=toyapp.app).run(invariants=[parse_invariant(check)])
    assert report.fidelity == 1.0
    assert [v.span for v in report.violations] == printed
    assert [s.ref for s in replayed.spans] == [s.ref for s in run.spans]
