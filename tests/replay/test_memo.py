"""The inference memo: a memoised replay is the same replay, and nothing changed is ever served."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgetrace.cli import main
from edgetrace.replay import Replayer, replay_session
from edgetrace.replay._memo import InferenceMemo, MemoMismatchError

DATA = Path(__file__).resolve().parents[1] / "data"
SCENARIO = Path(__import__("edgetrace.scenarios.agri", fromlist=["x"]).__file__).resolve().parent
LATENCY = ["latency(op=state.*, delay=2s, p=0.1)"]


@pytest.fixture(scope="module")
def agri() -> Replayer:
    return Replayer(DATA / "agri-demo.ets")


def _step(replayer: Replayer, kind: str):
    """The first recorded step of this kind that has its blobs, and its key."""
    span = next(s for s in replayer.recording.spans if s.kind.value == kind and not s.failed and s.blobs)
    return span, replayer.recording.keys[span.ref]


@pytest.mark.parametrize("faults", [[], LATENCY, ["model(name=event_extractor, fault=empty_output, p=0.2)"]])
def test_a_memoised_replay_is_the_replay(agri, faults):
    for seed in (0, 3):
        memo, _, run = replay_session(agri.session.path, faults=faults, seed=seed, replayer=agri)
        real, _, again = replay_session(agri.session.path, faults=faults, seed=seed, replayer=agri, reexecute=True)
        assert memo.to_json() == real.to_json()
        assert run.blobs == again.blobs  # the replayed blobs are the recorded ones, byte for byte
        assert run.memo["hits"] > 0 and again.memo["hits"] == 0


def test_a_changed_input_is_never_served(agri):
    span, key = _step(agri, "infer")
    runner = agri.app.build_model("event_extractor", None)
    caption = agri.session.blob(span.blobs["input"])
    from edgetrace._codec import decode_any

    recorded = decode_any(caption)["caption"]
    memo = InferenceMemo(agri.recording)
    hit = memo.model(runner, recorded, key)
    assert hit is not None and hit.output == runner.run(recorded).output
    assert memo.model(runner, recorded + " ", key) is None  # one more space: run it
    assert memo.model(runner, recorded.upper(), key) is None
    other = next(k for k in agri.recording.keys.values() if k[2] == "infer" and k != key)
    assert memo.model(runner, recorded, other) is None or _same_input(agri, other, recorded)
    assert memo.stats.hits >= 1 and memo.stats.misses >= 2


def _same_input(agri: Replayer, key, caption: str) -> bool:
    from edgetrace._codec import decode_any

    span = agri.recording.by_key[key]
    return decode_any(agri.session.blob(span.blobs["input"]))["caption"] == caption


def test_a_changed_artifact_is_never_served(agri, monkeypatch):
    span, key = _step(agri, "infer")
    from edgetrace._codec import decode_any

    caption = decode_any(agri.session.blob(span.blobs["input"]))["caption"]
    runner = agri.app.build_model("event_extractor", None)
    memo = InferenceMemo(agri.recording)
    assert memo.model(runner, caption, key) is not None
    runner.sha256 = "0" * 64  # another model file
    assert memo.model(runner, caption, key) is None
    runner = agri.app.build_model("event_extractor", None)
    monkeypatch.setattr(type(runner), "options", lambda self: {"intra_op_threads": 2})  # other settings
    assert InferenceMemo(agri.recording).model(runner, caption, key) is None
    assert InferenceMemo(agri.recording, reexecute=True).model(agri.app.build_model("event_extractor", None),
                                                               caption, key) is None


def test_a_changed_policy_document_or_policy_is_never_served(agri):
    import json

    span, key = _step(agri, "decide")
    document = json.loads(agri.session.blob(span.blobs["input"]))
    engine = agri.app.build_policy("spray_policy", None)
    memo = InferenceMemo(agri.recording)
    hit = memo.policy(engine, document, key)
    real = engine.evaluate(document)
    assert hit is not None and (hit.value, hit.result, hit.fired) == (real.value, real.result, real.fired)
    changed = json.loads(json.dumps(document))
    changed["state"] = {"available": False, "reason": "changed"}
    assert memo.policy(engine, changed, key) is None
    assert memo.policy(engine, {**document, "extra": (1, 2)}, key) is None  # not plain JSON: never
    fixed = agri.app.build_policy("spray_policy", SCENARIO / "policies" / "spray_policy_fixed.rego")
    assert memo.policy(fixed, document, key) is None  # another policy file


def test_a_substituted_policy_runs_every_decision(agri):
    fixed = f"spray_policy={SCENARIO / 'policies' / 'spray_policy_fixed.rego'}"
    _, _, run = replay_session(agri.session.path, faults=LATENCY, policies=[fixed], seed=1, replayer=agri)
    decides = sum(1 for s in run.spans if s.kind.value == "decide")
    assert run.memo["misses"] >= decides  # every decide ran (the infers may still be served)


def test_a_non_deterministic_model_fails_loudly(tmp_path, monkeypatch, capsys):
    from edgetrace.scenarios.agri.runner import ExtractorRunner

    real = ExtractorRunner.run
    calls = [0]

    def flaky(self, inputs):
        calls[0] += 1
        result = real(self, inputs)
        if result.output is not None:
            result.output = {**result.output, "confidence": 0.5}
        return result

    monkeypatch.setattr(ExtractorRunner, "run", flaky)
    session = shutil.copy(DATA / "agri-demo.ets", tmp_path / "agri-demo.ets")
    with pytest.raises(MemoMismatchError, match="event_extractor"):
        replay_session(session)  # faithful: a sample is re-executed
    assert main(["replay", str(session), "--fault", LATENCY[0], "--verify-memo", "3"]) == 1
    assert "replay diverged: inference memo: model 'event_extractor'" in capsys.readouterr().err
    # forced re-execution: no memo, the replay just diverges (as any non-deterministic model would)
    assert main(["replay", str(session), "--reexecute", "all", "--json"]) == 1


def test_verify_memo_re_executes_the_sample_it_names(agri):
    _, _, run = replay_session(agri.session.path, faults=LATENCY, seed=2, replayer=agri, verify_memo=5)
    assert run.memo["verified"] == 5
    _, _, run = replay_session(agri.session.path, faults=LATENCY, seed=2, replayer=agri)
    assert run.memo["verified"] == 0  # under faults no sample unless asked
    _, _, run = replay_session(agri.session.path, replayer=agri)
    assert run.memo["verified"] == 8 and run.memo["misses"] == 0  # faithful: every step served, 8 checked


def test_a_mismatch_crosses_process_boundaries():
    import pickle

    err = MemoMismatchError("inference memo: model 'm' at step x", ("t", "n", "infer", "m", 1))
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, MemoMismatchError) and back.key == err.key and str(back) == str(err)
