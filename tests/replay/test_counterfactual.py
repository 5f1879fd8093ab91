"""Counterfactual replays of agri with the fixed policy, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetrace.replay import replay_session
from edgetrace.replay._counterfactual import output_change

DATA = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"
AGRI = Path(__import__("edgetrace.scenarios.agri", fromlist=["x"]).__file__).resolve().parent
SLOW = [str(AGRI / "faults" / "state-latency.toml")]
FIXED = {"spray_policy": AGRI / "policies" / "spray_policy_fixed.rego"}


def test_closed_loop_the_fixed_policy_fixes_every_violation_and_adds_none():
    report, _, _ = replay_session(DATA, fault_files=SLOW, policies=FIXED)
    cf = report.counterfactual
    assert cf["mode"] == "closed-loop"
    assert cf["verdicts"]["fixed"] == 41 and cf["verdicts"]["newly failing"] == 0
    assert cf["verdicts"]["still failing"] == 0
    assert report.violations == []
    text = report.render_text()
    assert text.index("COUNTERFACTUAL") < text.index("trace(s) changed")  # the summary leads
    assert "41 violation(s) fixed, 0 new" in text
    assert "more changed traces" not in text  # every changed trace is listed


def test_teacher_forced_feeds_the_recorded_inputs_and_changes_nothing_downstream():
    report, _, _ = replay_session(DATA, fault_files=SLOW, policies=FIXED, mode="teacher-forced")
    cf = report.counterfactual
    assert cf["mode"] == "teacher-forced" and cf["steps_compared"] == 64
    assert all(s["recorded"] == "spray" and s["counterfactual"] == "abort" for t in cf["traces"] for s in t["steps"])
    # no downstream effect: the run itself is the baseline's, violations and all
    baseline, _, _ = replay_session(DATA, fault_files=SLOW)
    assert len(report.violations) == len(baseline.violations) == 41


def test_on_the_faithful_replay_the_fixed_policy_agrees_wherever_state_arrived():
    report, _, _ = replay_session(DATA, policies=FIXED, mode="teacher-forced")
    assert report.counterfactual["traces_changed"] == 0  # same decisions on every recorded situation


def test_unknown_mode_is_a_usage_error():
    from edgetrace import UsageError

    with pytest.raises(UsageError, match="teacher-forced"):
        replay_session(DATA, policies=FIXED, mode="open-loop")


def test_model_output_changes_in_numbers():
    import numpy as np

    change = output_change({"p": np.array([0.1, 0.7, 0.2])}, {"p": np.array([0.6, 0.3, 0.1])})
    assert change["changed"] and change["argmax_changed"] and change["max_abs_delta"] == pytest.approx(0.5)
    same = output_change({"type": "weed", "confidence": 0.9}, {"type": "weed", "confidence": 0.9})
    assert same == {"changed": False, "max_abs_delta": 0.0}
