"""Rule-engine and model adapters: real regopy, real ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetrace import ModelError, PolicyError
from edgetrace.agents import OnnxRunner, PythonPolicy, RegoPolicy

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "scenarios" / "agri" / "policies"
HAZARD = ROOT / "scenarios" / "swarm" / "model" / "hazard.onnx"

WEED = {"type": "weed_detected", "confidence": 0.93}
SOIL = {"type": "soil_moisture_low", "confidence": 0.97}
CLEAR = {"available": True, "zone": {"blocked": False, "sprayed": False}}
DOWN = {"available": False, "reason": "timeout after 1s"}


@pytest.mark.parametrize(
    ("policy", "event", "state", "decision", "fired"),
    [
        ("spray_policy", WEED, CLEAR, "spray", ["weed_confirmed", "zone_clear"]),
        ("spray_policy", SOIL, CLEAR, "hold", ["zone_clear"]),
        ("spray_policy", SOIL, DOWN, "spray", ["fallback_scheduled_pass"]),  # the bug
        ("spray_policy_fixed", SOIL, DOWN, "abort", ["abort_state_unavailable"]),
        ("spray_policy_fixed", WEED, DOWN, "abort", ["abort_state_unavailable", "weed_confirmed"]),
        ("spray_policy_fixed", WEED, CLEAR, "spray", ["weed_confirmed", "zone_clear"]),
    ],
)
def test_agri_rego_policies(policy, event, state, decision, fired):
    engine = RegoPolicy("spray_policy", POLICIES / f"{policy}.rego")
    result = engine.evaluate({"event": event, "state": state})
    assert result.value == decision
    assert result.fired == fired
    assert len(engine.sha256) == 64


def test_rego_syntax_error_is_a_policy_error(tmp_path):
    bad = tmp_path / "bad.rego"
    bad.write_text("package x\n\nallow := \n")
    with pytest.raises(PolicyError, match="does not compile"):
        RegoPolicy("bad", bad)


def test_rego_missing_file_and_missing_package(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        RegoPolicy("p", tmp_path / "nope.rego")
    nopkg = tmp_path / "nopkg.rego"
    nopkg.write_text("allow := true\n")
    with pytest.raises(PolicyError, match="package"):
        RegoPolicy("p", nopkg)


def test_python_policy_identity_and_fired():
    def rules(doc):
        return {"decision": "go" if doc["x"] > 1 else "stop", "fired": ["big"] if doc["x"] > 1 else []}

    engine = PythonPolicy("p", rules)
    assert engine.evaluate({"x": 3}).value == "go"
    assert engine.evaluate({"x": 0}).fired == []
    assert engine.qualname.endswith("rules")
    assert len(engine.sha256) == 64


def test_onnx_runner_is_deterministic_and_records_settings():
    runner = OnnxRunner("hazard", HAZARD)
    feats = np.array([[0.9, 0.8, 0.5, 0.0]], dtype=np.float32)
    outs = [runner.run({"features": feats}).output["hazard"].tobytes() for _ in range(50)]
    assert len(set(outs)) == 1
    opts = runner.options()
    assert opts["intra_op_threads"] == 1 and opts["deterministic_compute"] is True
    result = runner.run({"features": feats})
    assert result.outputs["hazard"]["shape"] == [1, 1]


def test_onnx_runner_rejects_bad_inputs_and_files(tmp_path):
    runner = OnnxRunner("hazard", HAZARD)
    with pytest.raises(ModelError, match="missing inputs"):
        runner.run({"wrong": np.zeros((1, 4), dtype=np.float32)})
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxRunner("junk", junk)
    with pytest.raises(ModelError, match="no file"):
        OnnxRunner("none", tmp_path / "none.onnx")
