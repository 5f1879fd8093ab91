"""OTel that round-trips: ids that never collide, content where LLM backends look, ingest that
loses nothing (gRPC, events, links, durable acks, dedup across restarts), and a receiver that
holds up against hostile clients. Real SDK clients and exporters; nothing mocked."""

from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_otel import HEX_TRACE, _any, _HubThread, _in_memory, _post, _request_json, _subprocess_env

from edgetrace import EdgeTraceError
from edgetrace._otlp import IdScheme, IngestError, OtlpForwarder, export_session, session_namespace
from edgetrace._otlp.receiver import MAX_SESSIONS_PER_REQUEST
from edgetrace._records import Manifest, Span, SpanKind, Status
from edgetrace._session import Session, SessionWriter

DEMO = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"


def _attrs(proto: Any) -> dict[str, Any]:
    return {kv.key: _any(kv.value) for kv in proto.attributes}


def _export(path: Path, **options: Any) -> dict[str, tuple[Any, dict[str, Any]]]:
    exporter = InMemorySpanExporter()
    assert export_session(Session(path), exporter, **options).ok
    return _in_memory(exporter).spans()


def _ids(got: dict[str, tuple[Any, dict[str, Any]]]) -> set[tuple[str, str]]:
    return {(p.trace_id.hex(), p.span_id.hex()) for p, _ in got.values()}


# --- 1. exports never collide -------------------------------------------------------------------


@pytest.fixture(scope="module")
def replays(tmp_path_factory) -> dict[str, Path]:
    from edgetrace.agents import load_scenario
    from edgetrace.replay import replay_session

    folder = tmp_path_factory.mktemp("replays")
    app = load_scenario("agri").app  # the app comes from us, never from the session file
    out = {}
    for name, faults in (("faithful", []), ("latency", ["latency(op=state.*, delay=2s)"])):
        report, replayer, run = replay_session(DEMO, faults=faults, app=app)
        out[name] = replayer.save(run, report, folder / f"{name}.ets")
    return out


def test_a_replay_exported_next_to_its_recording_never_shares_an_id(replays, capsys):
    capsys.readouterr()
    recorded = _export(DEMO)
    faithful, latency = _export(replays["faithful"]), _export(replays["latency"])
    assert len(recorded) == len(Session(DEMO)) and len(faithful) == len(Session(replays["faithful"]))
    rec_traces = {t for t, _ in _ids(recorded)}
    for replay in (faithful, latency):
        assert not {s for _, s in _ids(replay)} & {s for _, s in _ids(recorded)}
        assert not {t for t, _ in _ids(replay)} & rec_traces
    assert not _ids(faithful) & _ids(latency)  # two plans, two runs
    assert _export(DEMO) == recorded  # re-export: idempotent
    overridden = _export(DEMO, namespace="mine")
    assert not _ids(overridden) & _ids(recorded)
    assert session_namespace(Session(DEMO).manifest) == Session(DEMO).manifest.session_id


def test_ids_follow_the_identity_not_the_file(tmp_path):
    copy = tmp_path / "renamed.ets"
    copy.write_bytes(DEMO.read_bytes())
    assert _ids(_export(copy)) == _ids(_export(DEMO))


# --- 2. GenAI content where backends look -------------------------------------------------------


def _by_kind(got: dict[str, tuple[Any, dict[str, Any]]], kind: str) -> list[Any]:
    return [p for p, _ in got.values() if _attrs(p)["edgetrace.kind"] == kind]


def test_llm_spans_carry_prompt_and_answer_only_when_asked():
    plain, captured = _export(DEMO), _export(DEMO, capture=True)
    infer = {p.span_id: _attrs(p) for p in _by_kind(plain, "infer")}
    infer_c = {p.span_id: _attrs(p) for p in _by_kind(captured, "infer")}
    assert len(infer) == 64
    captions = {s.trace: s.attrs["edgetrace.payload"]["caption"] for s in Session(DEMO) if s.kind is SpanKind.INPUT}
    for sid, a in infer.items():
        assert a["openinference.span.kind"] == "LLM" and a["llm.model_name"] == "event_extractor"
        assert a["output.value"] == a["edgetrace.output.text"]  # the answer: already in the previews
        assert "gen_ai.input.messages" not in a and "input.value" not in a  # the prompt is opt-in
        c = infer_c[sid]
        prompt = json.loads(c["gen_ai.input.messages"])
        assert prompt == [{"role": "user", "parts": [{"type": "text", "content": captions[a["edgetrace.trace"]]}]}]
        answer = json.loads(c["gen_ai.output.messages"])
        assert answer[0]["role"] == "assistant" and answer[0]["parts"][0]["content"] == c["output.value"]
        assert c["input.value"] == captions[a["edgetrace.trace"]] == c["llm.input_messages.0.message.content"]
        assert c["llm.token_count.total"] == c["gen_ai.usage.input_tokens"] + c["gen_ai.usage.output_tokens"]


def test_captured_content_is_capped_in_bytes_and_stays_valid_json():
    got = _export(DEMO, capture=True, content_limit=120)
    for proto in _by_kind(got, "infer"):
        a = _attrs(proto)
        for key in ("gen_ai.input.messages", "input.value", "output.value"):
            assert len(a[key].encode()) <= 120
        json.loads(a["gen_ai.input.messages"])


def test_decisions_roots_and_nodes_read_well_in_any_backend():
    got = _export(DEMO, capture=True)
    decide = _by_kind(got, "decide")[0]
    a = _attrs(decide)
    assert a["openinference.span.kind"] == "GUARDRAIL"
    assert json.loads(a["output.value"])["decision"] in ("spray", "skip", "hold")
    assert "event" in json.loads(a["input.value"])
    acts = _by_kind(got, "act")
    assert acts and all(_attrs(p)["openinference.span.kind"] == "TOOL" for p in acts)
    roots = [p for p, _ in got.values() if not p.parent_span_id]
    assert {p.name.split(" ")[0] for p in roots} == {"frame"}
    assert all(p.name == f"frame {_attrs(p)['edgetrace.trace']}" for p in roots)  # frame tractor-01/f0001
    for proto, resource_attrs in got.values():
        a = _attrs(proto)
        assert a["edgetrace.node"] == resource_attrs["service.instance.id"]
        assert json.loads(a["metadata"])["node"] == a["edgetrace.node"] and a["edgetrace.node"] in a["tag.tags"]
        assert a["session.id"] == Session(DEMO).manifest.session_id
        assert resource_attrs["openinference.project.name"] == "agri"


def test_untraced_steps_of_two_nodes_are_two_traces(tmp_path):
    path = tmp_path / "u.ets"
    with SessionWriter(path, Manifest(session_id="u", nodes=["a", "b"])) as writer:
        writer.append([Span(node="a", seq=1, kind=SpanKind.LOG, name="x"),
                       Span(node="b", seq=1, kind=SpanKind.LOG, name="x")])
    got = _export(path)
    assert len({p.trace_id for p, _ in got.values()}) == 2


# --- 3. ingest loses nothing ---------------------------------------------------------------------


def _rich_request(service: str = "pay", instance: str = "pay-7") -> bytes:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}},
                                    {"key": "service.instance.id", "value": {"stringValue": instance}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
            {"traceId": HEX_TRACE, "spanId": "00000000000000e1", "name": "charge", "kind": 3,
             "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000000900",
             "status": {"code": 2, "message": "card declined"},
             "events": [{"name": "exception", "timeUnixNano": "1700000000000000500", "attributes": [
                 {"key": "exception.type", "value": {"stringValue": "CardDeclined"}},
                 {"key": "exception.message", "value": {"stringValue": "declined by issuer"}},
                 {"key": "exception.stacktrace", "value": {"stringValue": "Traceback ...\n  line 3"}}]}],
             "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
                        "attributes": [{"key": "why", "value": {"stringValue": "retry of"}}]}]},
            {"traceId": HEX_TRACE, "spanId": "00000000000000e2", "parentSpanId": "00000000000000e1",
             "name": "POST /issuer", "kind": 3, "startTimeUnixNano": "1700000000000000100",
             "endTimeUnixNano": "1700000000000000800"},
        ]}]}]}).encode()


def test_events_links_status_and_instance_round_trip(tmp_path):
    running = _HubThread(tmp_path / "data")
    try:
        assert _post(running.port, _rich_request(), "application/json")[0] == 200
    finally:
        running.close()
    path = tmp_path / "data" / "otel.ets"
    first, second = _export(path), _export(path)
    assert first == second
    charge, res = first["00000000000000e1"]
    assert [e.name for e in charge.events] == ["exception"]
    event = {kv.key: _any(kv.value) for kv in charge.events[0].attributes}
    assert event == {"exception.type": "CardDeclined", "exception.message": "declined by issuer",
                     "exception.stacktrace": "Traceback ...\n  line 3"}
    assert charge.events[0].time_unix_nano == 1_700_000_000_000_000_500
    assert [(x.trace_id.hex(), x.span_id.hex()) for x in charge.links] == [
        ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")]
    assert {kv.key: _any(kv.value) for kv in charge.links[0].attributes} == {"why": "retry of"}
    assert charge.status.code == 2 and "error.type" not in _attrs(charge)
    assert res["service.instance.id"] == "pay-7"
    child = first["00000000000000e2"][0]
    assert child.parent_span_id.hex() == "00000000000000e1"


def test_a_service_without_instance_id_gets_a_stable_one(tmp_path):
    running = _HubThread(tmp_path / "data")
    try:
        assert _post(running.port, _request_json(["00000000000000f1"]), "application/json")[0] == 200
    finally:
        running.close()
    path = tmp_path / "data" / "otel.ets"
    import opentelemetry.sdk.resources as sdk_resources

    ids = set()
    for _ in range(2):
        sdk_resources._service_instance_id = None  # as in a new process: the SDK would draw a new UUID
        ids.add(_export(path)["00000000000000f1"][1]["service.instance.id"])
    assert len(ids) == 1


def test_forwarding_through_the_hub_keeps_foreign_spans_as_sent():
    """A foreign child of a foreign parent keeps its parent id; errors get no '_OTHER'."""
    exporter = InMemorySpanExporter()
    common = {"edgetrace.otel.kind": "CLIENT", "service.name": "pay"}
    parent = Span(node="otel:pay", seq=1, kind=SpanKind.OTEL, name="p", trace=HEX_TRACE,
                  attrs={**common, "edgetrace.otel.span_id": "00000000000000a1"})
    child = Span(node="otel:pay", seq=2, kind=SpanKind.OTEL, name="c", trace=HEX_TRACE, parent="otel:pay:1",
                 status=Status.ERROR, error="boom",
                 attrs={**common, "edgetrace.otel.span_id": "00000000000000a2",
                        "edgetrace.otel.parent_span_id": "00000000000000a1"})
    with OtlpForwarder(exporter, schedule_delay_millis=10) as forwarder:
        forwarder("otel", [parent, child])
        assert forwarder.flush()
    got = _in_memory(exporter).spans()
    assert got["00000000000000a2"][0].parent_span_id.hex() == "00000000000000a1"
    assert "error.type" not in _attrs(got["00000000000000a2"][0])


def test_forwarded_times_are_now_when_the_manifest_has_no_epoch():
    exporter = InMemorySpanExporter()
    before = time.time_ns()
    with OtlpForwarder(exporter, schedule_delay_millis=10) as forwarder:  # manifest: session id only
        forwarder("live", [Span(node="t", seq=1, kind=SpanKind.LOG, name="x", trace="f", start=5_000, end=9_000)])
        assert forwarder.flush()
    (span,) = exporter.get_finished_spans()
    assert before - 60 * 10**9 < span.start_time <= span.end_time <= time.time_ns() + 10**9
    assert span.end_time - span.start_time == 4_000


def test_ingest_caps_strings_in_bytes_as_export_does(tmp_path):
    running = _HubThread(tmp_path / "data")
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": HEX_TRACE, "spanId": "00000000000000c1", "name": "é" * 3000,
         "attributes": [{"key": "text", "value": {"stringValue": "é" * 3000}}]}]}]}]}).encode()
    try:
        assert _post(running.port, body, "application/json")[0] == 200
    finally:
        running.close()
    (span,) = Session(tmp_path / "data" / "otel.ets").spans
    assert len(span.name.encode()) <= 2048 and len(span.attrs["text"].encode()) <= 2048


def test_ingest_error_is_an_edgetrace_error():
    assert issubclass(IngestError, EdgeTraceError)


def test_otlp_only_sessions_are_sealed_when_the_hub_stops(tmp_path):
    running = _HubThread(tmp_path / "data")
    running.call(running.hub.store_local("agents", lambda w: [Span(node="t", seq=1, kind=SpanKind.INPUT, name="f",
                                                                  trace="frame-1")]))
    agent_trace = f"{IdScheme('agents').trace_id('frame-1'):032x}"
    joined = _request_json(["00000000000000d1"]).replace(HEX_TRACE.encode(), agent_trace.encode())
    try:
        assert _post(running.port, _request_json(["00000000000000d2"]), "application/json")[0] == 200
        assert _post(running.port, joined, "application/json")[0] == 200
    finally:
        running.close()
    assert Session(tmp_path / "data" / "otel.ets").sealed
    agents = Session(tmp_path / "data" / "agents.ets")
    assert not agents.sealed and [s.node for s in agents] == ["t", "otel:pay"]  # an agent session: the driver seals


# --- OTLP/gRPC, through the SDK's own gRPC exporter ---------------------------------------------


def _grpc_client(port: int, token: str = "") -> Any:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    headers = {"authorization": f"Bearer {token}"} if token else None
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True, headers=headers, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": "inventory"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


@pytest.mark.slow
def test_hub_takes_otlp_grpc_from_the_sdk_exporter(tmp_path):
    data = tmp_path / "data"
    env = {**_subprocess_env(), "EDGETRACE_TOKEN": "s3cret"}
    proc = subprocess.Popen([sys.executable, "-m", "edgetrace", "hub", "--listen", "127.0.0.1:0", "--data", str(data),
                             "--otlp-grpc-listen", "127.0.0.1:0"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        port = 0
        deadline = time.monotonic() + 30
        while not port and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "OTLP/gRPC on " in line:
                port = int(line.rsplit(":", 1)[1])
        assert port, proc.stderr.read() if proc.poll() is not None else "no gRPC address printed"
        provider, _ = _grpc_client(port, "s3cret")
        tracer = provider.get_tracer("inv")
        with tracer.start_as_current_span("reserve") as root, tracer.start_as_current_span("UPDATE stock"):
            pass
        provider.shutdown()
        _, wrong = _grpc_client(port, "nope")
        from opentelemetry.sdk.trace.export import SpanExportResult

        with tracer.start_as_current_span("stray") as stray:
            pass
        assert wrong.export([stray]) is SpanExportResult.FAILURE  # UNAUTHENTICATED: not retried, not stored
        wrong.shutdown()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    session = Session(data / "otel.ets")
    names = {s.name: s for s in session}
    assert set(names) == {"reserve", "UPDATE stock"}
    assert names["UPDATE stock"].parent == names["reserve"].ref
    assert names["reserve"].attrs["edgetrace.otel.span_id"] == f"{root.get_span_context().span_id:016x}"
    assert session.sealed


# --- hardening: durable acks, dedup across restarts, limits --------------------------------------


def _start_hub(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "edgetrace", "hub", "--listen", "127.0.0.1:0", "--data",
                             str(tmp_path / "data"), "--otlp-listen", "127.0.0.1:0", *extra], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_subprocess_env())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "OTLP/HTTP on " in line:
            return proc, int(line.split("OTLP/HTTP on ")[1].split(":")[2].split("/")[0])
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"hub did not start: {proc.communicate()[1]}")


@pytest.mark.slow
def test_a_200_means_stored_even_for_a_child_whose_parent_is_missing(tmp_path):
    """Issue 14 #5: 10/10 lost on kill -9 right after the 200 (the child waited for its parent)."""
    proc, port = _start_hub(tmp_path)
    try:
        for i in range(10):
            body = _request_json([f"00000000000001{i:02x}", f"00000000000002{i:02x}"], parent="00000000000000ff")
            body = body.replace(b'"parentSpanId": ""', b'"parentSpanId": "00000000000000ee"')
            assert _post(port, body, "application/json")[0] == 200
    finally:
        proc.kill()  # no chance to flush anything
        proc.communicate()
    spans = Session(tmp_path / "data" / "otel.ets").spans
    assert len(spans) == 20
    assert all(s.attrs["edgetrace.otel.parent_span_id"] in ("00000000000000ee", "00000000000000ff") for s in spans)


def test_a_retry_after_a_hub_restart_is_not_stored_twice(tmp_path):
    """Issue 14 #6: 5 records became 10."""
    body = _request_json([f"000000000000003{i}" for i in range(5)], parent="0000000000000030")
    first = _HubThread(tmp_path / "data")
    try:
        assert _post(first.port, body, "application/json")[0] == 200
    finally:
        first.close()
    second = _HubThread(tmp_path / "data")
    try:
        assert _post(second.port, body, "application/json")[0] == 200  # the client's retry
        assert second.receiver.stored == 0
    finally:
        second.close()
    session = Session(tmp_path / "data" / "otel.ets")
    assert len(session) == 5
    by_id = {s.attrs["edgetrace.otel.span_id"]: s for s in session}
    assert by_id["0000000000000031"].parent == by_id["0000000000000030"].ref


def _raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        try:
            while chunk := sock.recv(4096):
                reply += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return reply


def _hub_with(tmp_path: Path, **options: Any) -> _HubThread:
    running = _HubThread.__new__(_HubThread)
    import asyncio
    import threading

    from edgetrace._hub import Hub
    from edgetrace._otlp import OtlpReceiver

    running.loop = asyncio.new_event_loop()
    running.hub = Hub(tmp_path / "data", port=0, token=options.pop("token", ""))
    running.receiver = OtlpReceiver(running.hub, port=0, **options)
    running.hub.on_spans = running.receiver.observe
    running.thread = threading.Thread(target=running.loop.run_forever, daemon=True)
    running.thread.start()
    running.call(running.hub.start())
    running.port = running.call(running.receiver.start())[1]
    return running


def test_the_token_is_checked_before_the_body_is_read(tmp_path):
    """Issue 14 #7: the OTLP port read (up to the 16 MiB limit of) the body before the token."""
    running = _hub_with(tmp_path, token="right")
    try:
        head = (b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/x-protobuf\r\n"
                b"Authorization: Bearer wrong\r\nContent-Length: 16000000\r\n\r\n")
        reply = _raw(running.port, head)  # no body follows: an answer now means it was never read
        assert reply.startswith(b"HTTP/1.1 401")
        assert running.receiver.received == 0
    finally:
        running.close()


def test_idle_and_slow_clients_are_cut_off(tmp_path):
    running = _hub_with(tmp_path, idle_timeout=0.3, read_timeout=0.3)
    try:
        assert _raw(running.port, b"", timeout=30) == b""  # says nothing: closed by the hub
        slow = (b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        assert _raw(running.port, slow, timeout=30).startswith(b"HTTP/1.1 408")
        assert _post(running.port, b"", "application/x-protobuf")[0] == 200
    finally:
        running.close()


def test_connections_are_capped(tmp_path):
    running = _hub_with(tmp_path, max_connections=2)
    held = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(2)]
    try:
        time.sleep(0.2)  # let the hub accept them (a wait for a state, not a timing assertion)
        assert _raw(running.port, b"").startswith(b"HTTP/1.1 503")
    finally:
        for sock in held:
            sock.close()
        running.close()


def _open_session_files() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").endswith(".ets")
        except OSError:
            pass
    return count


def test_one_request_naming_1100_sessions_does_not_break_the_hub(tmp_path):
    """Issue 14 #8: one OTLP request naming 1,100 sessions left 1,016 files open, then 500s."""
    running = _HubThread(tmp_path / "data")
    resource_spans = [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}},
                                    {"key": "edgetrace.session.id", "value": {"stringValue": f"s{i:04d}"}}]},
        "scopeSpans": [{"spans": [{"traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "name": "x"}]}],
    } for i in range(1100)]
    before = _open_session_files()
    try:
        status, reply = _post(running.port, json.dumps({"resourceSpans": resource_spans}).encode(), "application/json")
        assert status == 200
        assert json.loads(reply)["partialSuccess"]["rejectedSpans"] == str(1100 - MAX_SESSIONS_PER_REQUEST)
        assert _open_session_files() - before <= MAX_SESSIONS_PER_REQUEST
        assert _post(running.port, _request_json(["00000000000000a9"]), "application/json")[0] == 200
    finally:
        running.close()
    assert resource.getrlimit(resource.RLIMIT_NOFILE)  # the test ran under the machine's limit


def test_an_oversized_header_line_gets_a_reply(tmp_path):
    running = _HubThread(tmp_path / "data")
    try:
        reply = _raw(running.port, b"POST /v1/traces HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 431")
        assert _post(running.port, b"", "application/x-protobuf")[0] == 200
    finally:
        running.close()


def test_a_negative_chunk_size_is_a_bad_request(tmp_path):
    running = _HubThread(tmp_path / "data")
    try:
        reply = _raw(running.port, b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400")
    finally:
        running.close()


def test_gzip_bombs_are_still_refused(tmp_path):
    running = _hub_with(tmp_path, max_body=1000)
    try:
        status, _ = _post(running.port, gzip.compress(b"\0" * 100_000), "application/x-protobuf", "gzip")
        assert status == 413
    finally:
        running.close()
