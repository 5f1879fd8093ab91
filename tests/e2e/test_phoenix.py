"""A real OpenTelemetry backend: sessions exported into Arize Phoenix, read back with Phoenix's own
client. Span counts, parents, LLM input/output, timestamps — and a replay exported next to its
recording stays a separate set of traces."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from edgetrace._otlp import export_session
from edgetrace._session import Session
from edgetrace.cli import main

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"


def _expected(path: Path) -> dict[str, Any]:
    """span id hex -> the ReadableSpan our exporter sends (the same mapping, in memory)."""
    exporter = InMemorySpanExporter()
    assert export_session(Session(path), exporter, capture=True).ok
    return {f"{s.context.span_id:016x}": s for s in exporter.get_finished_spans()}


def _ns(text: str) -> int:
    when = datetime.fromisoformat(text)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def _spans_of(client: Any, session_id: str, want: int) -> list[dict[str, Any]]:
    """The spans Phoenix holds for one session, once it has ingested them all (it ingests async)."""
    import httpx

    def fetch() -> list[dict[str, Any]]:
        try:
            spans = client.spans.get_spans(project_identifier="agri", limit=20_000, timeout=30)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:  # the project exists once its first span is stored
                return []
            raise
        return [s for s in spans if s["attributes"].get("session.id") == session_id]

    deadline = time.monotonic() + 90
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = fetch()
        if len(found) >= want:
            time.sleep(1.0)  # and nothing more comes
            return fetch()
        time.sleep(0.5)
    return found


def test_phoenix_shows_recording_and_replay_intact_and_apart(phoenix, tmp_path, capsys):
    from phoenix.client import Client

    from edgetrace.agents import load_scenario
    from edgetrace.replay import replay_session

    report, replayer, run = replay_session(DEMO, faults=["latency(op=state.*, delay=2s)"],
                                            app=load_scenario("agri").app)
    replayed = replayer.save(run, report, tmp_path / "replayed.ets")
    assert main(["export", str(DEMO), "--otlp", phoenix.http, "--capture-content"]) == 0
    assert main(["export", str(replayed), "--otlp", phoenix.grpc, "--protocol", "grpc", "--capture-content"]) == 0
    capsys.readouterr()

    import httpx

    with httpx.Client(base_url=phoenix.http, timeout=30) as http:
        _check(Client(http_client=http), tmp_path, replayed)


def _check(client: Any, tmp_path: Path, replayed: Path) -> None:
    recorded, again = Session(DEMO), Session(replayed)
    sessions = ((recorded, _expected(DEMO)), (again, _expected(replayed)))
    seen_ids: set[str] = set()
    for session, expected in sessions:
        got = _spans_of(client, session.manifest.session_id, len(session))
        assert len(got) == len(session) == len(expected)  # every span, none merged into the other run
        ids = {s["context"]["span_id"] for s in got}
        assert ids == set(expected) and not ids & seen_ids
        seen_ids |= ids
        epoch = session.manifest.meta["epoch_ns"]
        for span in got:
            want = expected[span["context"]["span_id"]]
            assert span["context"]["trace_id"] == f"{want.context.trace_id:032x}"
            assert span["parent_id"] == (f"{want.parent.span_id:016x}" if want.parent else None)
            assert span["name"] == want.name
            start, end = _ns(span["start_time"]), _ns(span["end_time"])
            assert abs(start - want.start_time) < 1000 and abs(end - want.end_time) < 1000  # µs in Phoenix
            assert epoch <= start <= end <= epoch + 3600 * 10**9
        llm = [s for s in got if s["span_kind"] == "LLM"]
        assert len(llm) == sum(1 for s in session if s.kind.value == "infer")
        captions = {s.trace: s.attrs["edgetrace.payload"]["caption"] for s in session if s.kind.value == "input"}
        for span in llm:
            attrs = span["attributes"]
            assert attrs["input.value"] == captions[attrs["edgetrace.trace"]]
            assert attrs["output.value"] == attrs["edgetrace.output.text"]
            assert attrs["llm.token_count.total"] > 0
        assert {s["span_kind"] for s in got if s["attributes"]["edgetrace.kind"] == "decide"} == {"GUARDRAIL"}
    rec_traces = {s.context.trace_id for s in sessions[0][1].values()}
    assert not rec_traces & {s.context.trace_id for s in sessions[1][1].values()}
