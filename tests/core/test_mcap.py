"""`edgetrace export --mcap`: read back with the `mcap` library, CRCs validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcap.reader import make_reader

from edgetrace._session import Session
from edgetrace.cli import main

DEMO = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"


@pytest.fixture(scope="module")
def demo_mcap(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mcap") / "demo.mcap"
    assert main(["export", str(DEMO), "--mcap", str(out)]) == 0
    return out


def _read(path: Path):
    with open(path, "rb") as fh:
        reader = make_reader(fh, validate_crcs=True)
        summary = reader.get_summary()
        messages = [(ch.topic, sch.name, sch.encoding, ch.message_encoding, msg.log_time, msg.publish_time,
                     json.loads(msg.data)) for sch, ch, msg in reader.iter_messages()]
        attachments = {a.name: (a.media_type, a.data) for a in reader.iter_attachments()}
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
        schemas = {s.name: json.loads(s.data) for s in summary.schemas.values()}
    return summary, messages, attachments, metadata, schemas


def test_mcap_reads_back_with_crcs_checked(demo_mcap):
    session = Session(DEMO)
    summary, messages, attachments, metadata, schemas = _read(demo_mcap)
    assert summary.statistics.message_count == len(session) == len(messages)
    assert summary.chunk_indexes and all(c.compression == "zstd" for c in summary.chunk_indexes)
    with open(demo_mcap, "rb") as fh:  # data CRC (the whole data section) and chunk CRCs are written
        from mcap.reader import SeekingReader

        footer_reader = SeekingReader(fh, validate_crcs=True)
        assert footer_reader.get_summary() is not None
    topics = {t for t, *_ in messages}
    assert {f"/{node}/infer" for node in session.nodes if node != "hub"} <= topics
    assert "/hub/state.put" in topics
    assert all(enc == "jsonschema" and menc == "json" for _, _, enc, menc, *_ in messages)
    assert schemas["foxglove.Log"]["title"] == "foxglove.Log"
    decides = [m for m in messages if m[0].endswith("/decide")]
    assert decides and all(name == "foxglove.Log" for _, name, *_ in decides)
    log = decides[0][-1]
    assert set(log) >= {"timestamp", "level", "message", "name", "file", "line", "span"}
    assert log["level"] in (2, 3, 4) and "spray_policy →" in log["message"] and log["name"].startswith("tractor-")
    assert log["timestamp"]["sec"] * 10**9 + log["timestamp"]["nsec"] == decides[0][4]
    infer = next(m for m in messages if m[0].endswith("/infer"))
    assert infer[1] == "edgetrace.Span" and infer[-1]["kind"] == "infer" and infer[-1]["vclock"]
    assert all(log_time <= publish for *_, log_time, publish, _ in messages)
    epoch = session.manifest.meta["epoch_ns"]
    assert min(m[4] for m in messages) >= epoch
    by_ref = {m[-1].get("ref") or m[-1]["span"]["ref"] for m in messages}
    assert by_ref == {s.ref for s in session}
    m = session.manifest
    assert attachments["models/event_extractor.onnx"][0] == "application/octet-stream"
    import hashlib

    assert hashlib.sha256(attachments["models/event_extractor.onnx"][1]).hexdigest() == m.models["event_extractor"]
    assert hashlib.sha256(attachments["policies/spray_policy.rego"][1]).hexdigest() == m.policies["spray_policy"]
    assert metadata["edgetrace.session"]["session_id"] == m.session_id
    assert metadata["edgetrace.run"]["seed"] == "0"
    assert metadata["edgetrace.build"]["edgetrace"] == m.edgetrace and metadata["edgetrace.build"]["python"]


def test_a_replay_attaches_its_fault_plan(tmp_path):
    from edgetrace.agents import load_scenario
    from edgetrace.replay import replay_session

    report, replayer, run = replay_session(DEMO, faults=["latency(op=state.*, delay=2s)"],
                                            app=load_scenario("agri").app)
    saved = replayer.save(run, report, tmp_path / "r.ets")
    out = tmp_path / "r.mcap"
    assert main(["export", str(saved), "--mcap", str(out), "--json"]) == 0
    _, messages, attachments, metadata, _ = _read(out)
    assert attachments["fault-plan.txt"][1].decode().splitlines() == ["latency(delay=2s, op=state.*)"]
    assert json.loads(metadata["edgetrace.run"]["faults"]) == ["latency(delay=2s, op=state.*)"]
    assert len(messages) == len(Session(saved))


def test_missing_artifacts_are_named_not_fatal(tmp_path, capsys):
    from edgetrace._mcap import export_mcap

    summary = export_mcap(Session(DEMO), tmp_path / "x.mcap", models={}, policies={})
    assert not summary.missing  # installed scenarios are searched by hash
    from edgetrace._records import Manifest, Span, SpanKind
    from edgetrace._session import SessionWriter

    path = tmp_path / "own.ets"
    with SessionWriter(path, Manifest(session_id="own", models={"mine": "ab" * 32})) as writer:
        writer.append([Span(node="n", seq=1, kind=SpanKind.LOG, name="log", attrs={"edgetrace.message": "hi"})])
    summary = export_mcap(Session(path), tmp_path / "own.mcap")
    assert summary.missing == ["models/mine"]
    _, messages, _, metadata, _ = _read(tmp_path / "own.mcap")
    assert "not attached" in metadata["edgetrace.artifacts"]["models/mine"]
    assert messages[0][1] == "foxglove.Log" and messages[0][-1]["message"] == "hi"
