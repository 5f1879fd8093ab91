"""The OTLP bridge: sessions exported to real OTLP receivers, OTel spans ingested by the hub.

Tests that only check what would be exported (ids, parents, clocks, links, GenAI attributes)
export to the SDK's `InMemorySpanExporter` and read the spans back as the OTLP request the
SDK's own encoder would send; one test per transport (gRPC, HTTP, an SDK client into the hub
subprocess) stays against a real receiver."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from edgetrace._compact import by_reference
from edgetrace._hub import Hub
from edgetrace._otlp import (
    ForeignSpan,
    IdScheme,
    IngestError,
    OtlpForwarder,
    OtlpReceiver,
    decode_request,
    export_session,
    foreign_spans,
    make_exporter,
)
from edgetrace._otlp.matching import SessionMatcher, parents_first
from edgetrace._records import Manifest, Span, SpanKind, Status
from edgetrace._session import Session, SessionWriter
from edgetrace.cli import main

HEX_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SMALL = IdScheme("small")  # the small session's ids: its session id is the namespace


def _sid(ref: str, ids: IdScheme = SMALL) -> str:
    return f"{ids.span_id(ref):016x}"


def _tid(trace: str, ids: IdScheme = SMALL) -> str:
    return f"{ids.trace_id(trace):032x}"


# --- a small session with every kind of step -------------------------------------------------


def _spans() -> list[Span]:
    t, h = "tractor-01", "hub"
    infer_attrs = {
        "gen_ai.operation.name": "text_completion", "gen_ai.provider.name": "onnxruntime",
        "gen_ai.request.model": "event_extractor", "gen_ai.response.model": "event_extractor",
        "gen_ai.usage.input_tokens": 55, "gen_ai.usage.output_tokens": 14,
        "edgetrace.output": {"type": "weed_detected", "confidence": 0.99},
        "edgetrace.model.options": {"threads": 1}, "big": "x" * 10_000,
    }
    return [
        Span(node=t, seq=1, kind=SpanKind.INPUT, name="frame", trace="f1", start=1_000, end=1_000,
             attrs={"edgetrace.payload": {"caption": "a dandelion"}}, blobs={"input": "ab" * 32}),
        Span(node=t, seq=2, kind=SpanKind.INFER, name="event_extractor", trace="f1", parent=f"{t}:1",
             start=2_000, end=9_000, attrs=infer_attrs, blobs={"input": "cd" * 32, "output": "ef" * 32}),
        Span(node=t, seq=3, kind=SpanKind.STATE_PUT, name="events/tractor-01", trace="f1",
             parent=f"{t}:1", start=9_500, end=9_500, attrs={"edgetrace.to": "hub", "edgetrace.state.value": None}),
        Span(node=h, seq=1, kind=SpanKind.STATE_PUT, name="events/tractor-01", trace="f1",
             parent=f"{t}:1", cause=f"{t}:3", start=5_000, end=5_100, vc={t: 3}),
        Span(node=t, seq=4, kind=SpanKind.RECV, name="state.put:reply", trace="f1", parent=f"{t}:1",
             cause=f"{h}:1", start=9_600, end=20_000, vc={h: 1}),
        Span(node=t, seq=5, kind=SpanKind.DECIDE, name="spray_policy", trace="f1", parent=f"{t}:1",
             start=20_100, end=21_000, attrs={"edgetrace.decision": "spray", "edgetrace.policy.sha256": "12" * 32,
                                              "edgetrace.rules_fired": ["weed_confirmed", "zone_clear"],
                                              "edgetrace.timed_out": False}),
        Span(node=t, seq=6, kind=SpanKind.ACT, name="spray", trace="f1", parent=f"{t}:1", start=21_100,
             end=21_100, attrs={"edgetrace.act.executed": False}),
        Span(node=t, seq=7, kind=SpanKind.INPUT, name="frame", trace=HEX_TRACE, start=30_000, end=30_000),
        Span(node=t, seq=8, kind=SpanKind.INFER, name="event_extractor", trace=HEX_TRACE, parent=f"{t}:7",
             start=30_100, end=31_000, status=Status.ERROR, error="model produced nothing",
             attrs={"gen_ai.request.model": "event_extractor", "error.type": "invalid_output"}),
    ]


@pytest.fixture()
def session_path(tmp_path: Path) -> Path:
    path = tmp_path / "small.ets"
    manifest = Manifest(session_id="small", app="agri", scenario="agri", nodes=["hub", "tractor-01"],
                        created="2026-11-24T16:31:43+00:00")
    with SessionWriter(path, manifest) as writer:
        writer.append(_spans())
        writer.seal()
    return path


# --- real OTLP receivers -------------------------------------------------------------------------


class _Collected:
    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.lock = threading.Lock()

    def add(self, request: Any) -> None:
        with self.lock:
            self.requests.append(request)

    def spans(self) -> dict[str, tuple[Any, dict[str, Any]]]:
        """span id hex -> (proto span, resource attributes)."""
        found = {}
        for req in self.requests:
            for rs in req.resource_spans:
                res = {kv.key: _any(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        found[s.span_id.hex()] = (s, res)
        return found


def _in_memory(exporter: InMemorySpanExporter) -> _Collected:
    """What `exporter` holds, as the OTLP request the SDK's own encoder would have sent."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    collected = _Collected()
    collected.add(encode_spans(exporter.get_finished_spans()))
    return collected


def _any(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_any(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


@pytest.fixture()
def grpc_collector() -> Iterator[tuple[str, _Collected]]:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    collected = _Collected()

    class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            collected.add(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", collected
    finally:
        server.stop(None).wait()


@pytest.fixture()
def http_collector() -> Iterator[tuple[str, _Collected]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    collected = _Collected()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            assert self.path == "/v1/traces"
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            collected.add(req)
            data = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", collected
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _check_export(session_path: Path, collected: _Collected) -> None:
    session = Session(session_path)
    got = collected.spans()
    assert len(got) == len(session)
    for span in session:
        sid = _sid(span.ref)
        proto, resource = got[sid]
        attrs = {kv.key: _any(kv.value) for kv in proto.attributes}
        assert proto.trace_id.hex() == _tid(span.trace)
        if span.parent:
            assert proto.parent_span_id.hex() == _sid(span.parent)
        else:
            assert proto.parent_span_id == b""
        assert attrs["edgetrace.seq"] == span.seq
        assert attrs["edgetrace.vclock"] == str(session.index.clock(span))
        assert resource["service.instance.id"] == span.node == resource["host.name"]
        assert resource["service.name"] == "agri"
        assert all(len(v) <= 2048 for v in attrs.values() if isinstance(v, str))
        if span.cause:
            assert [(link.span_id.hex(), link.trace_id.hex()) for link in proto.links] == [
                (_sid(span.cause), proto.trace_id.hex())]
        else:
            assert not proto.links
        if span.kind is SpanKind.INFER:
            assert proto.name == "text_completion event_extractor"
            assert attrs["gen_ai.provider.name"] == "onnxruntime"
            assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == "event_extractor"
        for name, sha in span.blobs.items():
            assert attrs[f"edgetrace.blob.{name}"] == sha
    infer = got[_sid('tractor-01:2')][0]
    attrs = {kv.key: _any(kv.value) for kv in infer.attributes}
    assert attrs["gen_ai.usage.input_tokens"] == 55 and attrs["gen_ai.usage.output_tokens"] == 14
    assert len(attrs["big"]) <= 2048
    assert json.loads(attrs["edgetrace.output"]) == {"confidence": 0.99, "type": "weed_detected"}
    decide = {kv.key: _any(kv.value) for kv in got[_sid('tractor-01:5')][0].attributes}
    assert decide["edgetrace.decision"] == "spray"
    assert decide["edgetrace.rules_fired"] == ["weed_confirmed", "zone_clear"]
    recv = got[_sid('tractor-01:4')][0]
    assert {kv.key: _any(kv.value) for kv in recv.attributes}["edgetrace.vclock"] == "hub=1,tractor-01=4"
    failed = got[_sid('tractor-01:8')][0]
    assert failed.trace_id.hex() == HEX_TRACE  # an id that already is OTel-shaped is kept
    assert failed.status.code == 2 and failed.status.message == "model produced nothing"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_export_reaches_a_real_receiver_intact(protocol, session_path, grpc_collector, http_collector, capsys):
    url, collected = grpc_collector if protocol == "grpc" else http_collector
    code = main(["export", str(session_path), "--otlp", url, "--protocol", protocol, "--batch", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["exported"] == out["spans"] == 9 and out["failed"] == 0 and out["batches"] == 3
    _check_export(session_path, collected)


def test_export_maps_every_kind_of_step(session_path):
    exporter = InMemorySpanExporter()
    summary = export_session(Session(session_path), exporter, batch_size=4)
    assert summary.ok and summary.exported == summary.spans == 9 and summary.batches == 3
    _check_export(session_path, _in_memory(exporter))


def test_export_twice_gives_the_same_ids(session_path):
    requests = []
    for _ in range(2):
        exporter = InMemorySpanExporter()
        assert export_session(Session(session_path), exporter).ok
        requests.extend(_in_memory(exporter).requests)
    first, second = requests
    assert first == second


def test_export_reads_otel_env_vars(session_path, http_collector, monkeypatch, capsys):
    url, collected = http_collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)  # the exporter appends /v1/traces
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    assert main(["export", str(session_path), "--json"]) == 0
    assert len(collected.spans()) == 9
    capsys.readouterr()


def test_export_to_nowhere_fails_in_one_line(session_path, capsys):
    code = main(["export", str(session_path), "--otlp", "http://127.0.0.1:9", "--timeout", "0.5"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("edgetrace: error: 9 of 9 spans were not accepted")


def test_export_refuses_bad_input(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.ets"), "--otlp", "http://127.0.0.1:9"]) == 2
    assert main(["export", str(tmp_path), "--header", "nokey"]) == 2
    capsys.readouterr()


def test_forwarder_rebuilds_clocks_and_never_raises(session_path):
    exporter = InMemorySpanExporter()
    session = Session(session_path)
    forwarder = OtlpForwarder(exporter, manifest_of=lambda s: session.manifest, schedule_delay_millis=50)
    with forwarder:
        by_node: dict[str, list[Span]] = {}
        for span in session:
            by_node.setdefault(span.node, []).append(span)
        for node in sorted(by_node):  # each node's stream in order, as the hub stores it
            forwarder("small", by_node[node])
        assert forwarder.flush()
    forwarder("small", session.spans)  # after close: ignored, not raised
    got = _in_memory(exporter).spans()
    assert len(got) == len(session)
    for span in session:
        attrs = {kv.key: _any(kv.value) for kv in got[_sid(span.ref)][0].attributes}
        assert attrs["edgetrace.vclock"] == str(session.index.clock(span))


def test_forwarder_survives_a_dead_backend(session_path):
    session = Session(session_path)
    forwarder = OtlpForwarder(make_exporter("http/protobuf", "http://127.0.0.1:9", timeout=0.2),
                              schedule_delay_millis=10)
    forwarder("small", session.spans)  # returns at once; the export fails in the background
    forwarder.close()
    assert forwarder.forwarded == len(session)


def _gossip(nodes: int = 5, rounds: int = 40) -> list[Span]:
    """A dense little gossip: each round one node sends to another, which merges the clock."""
    import random

    from edgetrace._vclock import delta

    rng = random.Random(7)
    names = [f"n{i}" for i in range(nodes)]
    clocks: dict[str, dict[str, int]] = {n: {} for n in names}
    spans: list[Span] = []

    def step(node: str, kind: SpanKind, t: int, cause: Span | None = None) -> Span:
        previous = clocks[node]
        current = dict(previous)
        if cause is not None:
            for k, v in clocks[cause.node].items():
                current[k] = max(current.get(k, 0), v)
        current[node] = previous.get(node, 0) + 1
        clocks[node] = current
        span = Span(node=node, seq=current[node], kind=kind, name=kind.value, trace=f"t{t % 3}",
                    cause=cause.ref if cause is not None else "", start=t, end=t + 5,
                    vc=delta(previous, current, own=node))
        spans.append(span)
        return span

    for t in range(rounds):
        a, b = rng.sample(names, 2)
        step(b, SpanKind.RECV, 1000 * t + 10, step(a, SpanKind.SEND, 1000 * t))
    return spans



def _vclocks(exporter: InMemorySpanExporter) -> dict[str, Any]:
    found = {}
    for s in exporter.get_finished_spans():
        attrs = dict(s.attributes or {})
        found[f"{attrs['edgetrace.node']}:{attrs['edgetrace.seq']}"] = attrs["edgetrace.vclock"]
    return found


def test_forwarded_clocks_by_reference_are_the_full_clocks(tmp_path):
    from edgetrace._records import CLOCK_REF_VERSION

    plain = _gossip()
    refs = by_reference(plain)
    assert sum(bool(s.merged) for s in refs) == 40 and any(s.vc != p.vc for s, p in zip(refs, plain, strict=True))
    manifest = Manifest(session_id="gossip")
    path = tmp_path / "refs.ets"
    with SessionWriter(path, manifest, format_version=CLOCK_REF_VERSION) as writer:
        writer.append(refs)
    expected = {s.ref: str(c) for s, c in ((s, Session(path).index.clock(s)) for s in refs)}
    assert expected == {s.ref: str(Session(path).index.clock(s)) for s in plain}  # the index agrees

    def forward(calls: list[list[Span]], **options: Any) -> dict[str, Any]:
        exporter = InMemorySpanExporter()
        with OtlpForwarder(exporter, manifest_of=lambda s: manifest, schedule_delay_millis=10, **options) as fwd:
            for batch in calls:
                fwd("gossip", batch)
            assert fwd.flush()
        return _vclocks(exporter)

    delta_form = forward([plain])
    assert delta_form == expected
    # one call, each node's records in order, node after node (receives before their sends):
    # resolved within the call
    assert forward([sorted(refs, key=lambda s: s.node, reverse=True)]) == expected
    # small calls in the order the records happened: the clocks kept from earlier calls
    assert forward([refs[i:i + 3] for i in range(0, len(refs), 3)]) == expected
    # each node in a call of its own, a receive before its send: the session's index
    by_node: dict[str, list[Span]] = {}
    for span in refs:
        by_node.setdefault(span.node, []).append(span)
    assert forward([by_node[n] for n in sorted(by_node)], read_session=lambda s: Session(path)) == expected


# --- ingest ------------------------------------------------------------------------------------


class _HubThread:
    """A Hub and its OTLP receiver on their own loop in a thread, as `edgetrace hub` runs them."""

    def __init__(self, data: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.hub = Hub(data, port=0)
        self.receiver = OtlpReceiver(self.hub, port=0, session="otel")
        self.hub.on_spans = self.receiver.observe
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.hub.start())
        self.port = self.call(self.receiver.start())[1]

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        async def stop() -> None:
            await self.receiver.aclose()
            self.hub.close()

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture()
def hub_thread(tmp_path: Path) -> Iterator[_HubThread]:
    running = _HubThread(tmp_path / "data")
    try:
        yield running
    finally:
        running.close()


def _otel_client(url: str, service: str, extra: dict[str, Any] | None = None, *, batch: bool = False) -> Any:
    """An SDK client; `batch` is what real services use (spans that end together, one request)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service, **(extra or {})}))
    exporter = OTLPSpanExporter(endpoint=url)
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return env


def _show(path: Path, cwd: Path, *extra: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "edgetrace", "show", str(path), "--json", *extra], cwd=cwd,
                         capture_output=True, text=True, timeout=60, env=_subprocess_env())
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_hub_ingests_spans_from_an_otel_sdk(tmp_path, http_collector):
    """`edgetrace hub --otlp-listen` takes spans from an unmodified OTel SDK client (and
    `--otlp-endpoint` forwards what it stored)."""
    data = tmp_path / "data"
    backend, forwarded = http_collector
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgetrace", "hub", "--listen", "127.0.0.1:0", "--otlp-listen", "127.0.0.1:0",
         "--data", str(data), "--otlp-session", "shop", "--otlp-endpoint", backend],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_subprocess_env())
    try:
        url = ""
        deadline = time.monotonic() + 30
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "OTLP/HTTP on " in line:
                url = line.split("OTLP/HTTP on ")[1].strip()
        assert url.endswith("/v1/traces"), proc.stderr.read() if proc.poll() is not None else url
        provider = _otel_client(url, "checkout", batch=True)
        tracer = provider.get_tracer("shop")
        with tracer.start_as_current_span("GET /cart") as root:
            root.set_attribute("http.route", "/cart")
            with tracer.start_as_current_span("SELECT carts") as child:
                child.set_attribute("db.system", "postgresql")
        trace_hex = f"{root.get_span_context().trace_id:032x}"
        provider.shutdown()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    shown = _show(data / "shop.ets", tmp_path, "--trace", trace_hex)
    spans = {s["name"]: s for s in shown["spans"]}
    assert set(spans) == {"GET /cart", "SELECT carts"}
    root_row, child_row = spans["GET /cart"], spans["SELECT carts"]
    assert root_row["kind"] == child_row["kind"] == "otel"
    assert root_row["node"] == "otel:checkout"
    assert child_row["parent"] == root_row["ref"]
    assert sorted([root_row["seq"], child_row["seq"]]) == [1, 2]
    assert child_row["attrs"]["db.system"] == "postgresql"
    assert root_row["attrs"]["edgetrace.untimed"] is True
    assert root_row["attrs"]["edgetrace.order"] == "timestamp"
    assert root_row["attrs"]["edgetrace.otel.span_id"] == f"{root.get_span_context().span_id:016x}"
    summary = _show(data / "shop.ets", tmp_path)
    assert summary["traces"][0]["untimed"] is True
    got = forwarded.spans()  # forwarded under their own ids, flushed when the hub stopped
    assert set(got) == {root_row["attrs"]["edgetrace.otel.span_id"], child_row["attrs"]["edgetrace.otel.span_id"]}
    assert {p.trace_id.hex() for p, _ in got.values()} == {trace_hex}


def test_foreign_spans_join_the_trace_an_agent_shipped(hub_thread, tmp_path):
    from opentelemetry import trace as api

    native = [Span(node="t", seq=1, kind=SpanKind.INPUT, name="frame", trace="frame-1"),
              Span(node="t", seq=2, kind=SpanKind.SEND, name="ask", trace="frame-1", parent="t:1")]
    hub_thread.call(hub_thread.hub.store_local("agri", lambda writer: native))
    url = f"http://127.0.0.1:{hub_thread.port}/v1/traces"
    provider = _otel_client(url, "weather-api")
    tracer = provider.get_tracer("svc")
    agri = IdScheme("agri")
    remote = api.SpanContext(agri.trace_id("frame-1"), agri.span_id("t:2"), is_remote=True,
                             trace_flags=api.TraceFlags(api.TraceFlags.SAMPLED))
    with tracer.start_as_current_span("GET /forecast", context=api.set_span_in_context(
            api.NonRecordingSpan(remote))):
        pass
    provider.shutdown()
    session = Session(hub_thread.hub.session_path("agri"))
    spans = session.trace("frame-1")
    foreign = [s for s in spans if s.kind is SpanKind.OTEL]
    assert len(foreign) == 1
    assert foreign[0].node == "otel:weather-api" and foreign[0].parent == "t:2" and foreign[0].seq == 1
    assert "otel:weather-api" in session.manifest.nodes


def _post(port: int, body: bytes, ctype: str = "application/x-protobuf", encoding: str = "",
          path: str = "/v1/traces") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": ctype}
        if encoding:
            headers["Content-Encoding"] = encoding
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _request_json(span_ids: list[str], parent: str = "", service: str = "pay") -> bytes:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
            {"traceId": HEX_TRACE, "spanId": sid, "parentSpanId": parent if i else "", "name": f"op{i}",
             "kind": 2, "startTimeUnixNano": str(1_700_000_000_000_000_000 + i),
             "endTimeUnixNano": str(1_700_000_000_000_000_100 + i),
             "attributes": [{"key": "n", "value": {"intValue": str(i)}}],
             "status": {"code": 2, "message": "boom"} if i == 1 else {}}
            for i, sid in enumerate(span_ids)]}]}]}).encode()


def test_ingest_json_gzip_dedup_and_persistent_seqs(tmp_path):
    data = tmp_path / "data"
    first = _HubThread(data)
    try:
        body = _request_json(["00000000000000b2", "00000000000000a1", "00000000000000a2"],
                             parent="00000000000000b2")
        status, reply = _post(first.port, gzip.compress(body), "application/json", "gzip")
        assert status == 200 and json.loads(reply) == {}
        status, _ = _post(first.port, body, "application/json")  # a client retry
        assert status == 200
    finally:
        first.close()
    second = _HubThread(data)  # a restart: seqs continue from the file
    try:
        status, _ = _post(second.port, _request_json(["00000000000000c3"]), "application/json")
        assert status == 200
    finally:
        second.close()
    session = Session(data / "otel.ets")
    assert [s.seq for s in session] == [1, 2, 3, 4]
    by_id = {s.attrs["edgetrace.otel.span_id"]: s for s in session}
    assert by_id["00000000000000a1"].parent == by_id["00000000000000b2"].ref
    assert by_id["00000000000000a1"].status is Status.ERROR and by_id["00000000000000a1"].error == "boom"
    assert by_id["00000000000000a1"].attrs["n"] == 1
    assert all(s.trace == HEX_TRACE and s.kind is SpanKind.OTEL for s in session)


def test_ingested_spans_export_with_their_own_ids(tmp_path):
    running = _HubThread(tmp_path / "data")
    try:
        body = _request_json(["00000000000000b2", "00000000000000a1"], parent="00000000000000b2")
        assert _post(running.port, body, "application/json")[0] == 200
    finally:
        running.close()
    exporter = InMemorySpanExporter()
    assert export_session(Session(tmp_path / "data" / "otel.ets"), exporter).ok
    got = _in_memory(exporter).spans()
    assert set(got) == {"00000000000000b2", "00000000000000a1"}
    child, resource = got["00000000000000a1"]
    assert child.parent_span_id.hex() == "00000000000000b2" and child.trace_id.hex() == HEX_TRACE
    assert child.kind == 2 and resource["service.name"] == "pay"
    assert child.start_time_unix_nano == 1_700_000_000_000_000_001  # foreign times are already Unix


def _foreign(span_id: str, parent: str = "", start: int = 0, trace: str = HEX_TRACE) -> ForeignSpan:
    return ForeignSpan(node="otel:pay", trace_id=trace, span_id=span_id, parent_id=parent, name=span_id,
                       start=start, end=start)


def test_parents_come_first_within_a_batch():
    batch = [_foreign("00000000000000a1", parent="00000000000000b2", start=1), _foreign("00000000000000b2", start=5)]
    assert [s.span_id for s in parents_first(batch)] == ["00000000000000b2", "00000000000000a1"]
    looped = [_foreign("00000000000000c1", parent="00000000000000c2"),
              _foreign("00000000000000c2", parent="00000000000000c1")]
    assert sorted(s.span_id for s in parents_first(looped)) == ["00000000000000c1", "00000000000000c2"]


def test_foreign_spans_are_matched_and_numbered_without_sockets(tmp_path):
    matcher = SessionMatcher()
    matcher.observe("agri", [Span(node="t", seq=1, kind=SpanKind.SEND, name="ask", trace="frame-1")])
    agri = IdScheme("agri")
    child = _foreign("00000000000000d1", parent=_sid("t:1", agri), trace=_tid("frame-1", agri))
    stray = _foreign("00000000000000d2")
    assert matcher.session_of(child, "otel") == "agri" and matcher.session_of(stray, "otel") == "otel"
    with SessionWriter(tmp_path / "agri.ets", Manifest(session_id="agri", nodes=["t"])) as writer:
        writer.append([Span(node="otel:pay", seq=4, kind=SpanKind.OTEL, name="before a restart")])
        spans = matcher.number(writer, "agri", [child])
        assert matcher.number(writer, "agri", [child]) == []  # a client retry
        assert "otel:pay" in writer.manifest.nodes
    assert [(s.ref, s.parent, s.trace) for s in spans] == [("otel:pay:5", "t:1", "frame-1")]
    assert matcher.stored("agri", child) and not matcher.stored("otel", child)


def test_bad_requests_get_400_and_a_reason(hub_thread):
    port = hub_thread.port
    status, body = _post(port, b"\xff\xff\xff", "application/x-protobuf")
    assert status == 400 and b"not an OTLP protobuf" in body
    assert _post(port, b"{", "application/json")[0] == 400
    assert _post(port, b"not gzip", "application/json", "gzip")[0] == 400
    assert _post(port, b"{}", "text/plain")[0] == 415
    assert _post(port, b"{}", "application/json", path="/v1/logs")[0] == 404
    status, body = _post(port, json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "zz", "spanId": "00"}]}]}]}).encode(), "application/json")
    assert status == 400 and b"not hex" in body
    # a span with a short id is rejected, the request still succeeds (partial success)
    status, body = _post(port, json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "00", "spanId": "00", "name": "x"}]}]}]}).encode(), "application/json")
    assert status == 200 and json.loads(body)["partialSuccess"]["rejectedSpans"] == "1"
    assert _post(port, b"", "application/x-protobuf")[0] == 200  # an empty request is valid


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                               lambda c: st.lists(c, max_size=4) | st.dictionaries(
                                   st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId",
                                                    "spanId", "attributes", "value", "key", "name"]),
                                   c, max_size=4), max_leaves=20).map(lambda d: json.dumps(d).encode())),
       ctype=st.sampled_from(["application/x-protobuf", "application/json"]),
       gz=st.booleans())
def test_decoder_never_crashes_on_garbage(body, ctype, gz):
    try:
        request = decode_request(gzip.compress(body) if gz else body, content_type=ctype,
                                 content_encoding="gzip" if gz else "")
    except IngestError as exc:
        assert exc.status in (400, 413, 415) and "\n" not in exc.reason
        return
    foreign_spans(request)  # whatever decodes maps to spans or rejections, never an exception


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory) -> Iterator[_HubThread]:
    running = _HubThread(tmp_path_factory.mktemp("fuzzhub"))
    try:
        yield running
    finally:
        running.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(min_size=1, max_size=200), ctype=st.sampled_from(
    ["application/x-protobuf", "application/json"]))
def test_receiver_answers_garbage_without_dying(shared_hub, body, ctype):
    status, _ = _post(shared_hub.port, body, ctype)
    assert status in (200, 400)
    assert _post(shared_hub.port, b"", "application/x-protobuf")[0] == 200  # still serving


def test_raw_http_garbage_is_refused(hub_thread):
    import socket

    for raw in (b"GARBAGE\r\n\r\n", b"POST /v1/traces HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                b"POST /v1/traces HTTP/1.1\r\nbroken header\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", hub_thread.port), timeout=10) as sock:
            sock.sendall(raw)
            assert sock.recv(100).startswith(b"HTTP/1.1 400")
    assert _post(hub_thread.port, b"", "application/x-protobuf")[0] == 200


DOC = Path(__file__).resolve().parents[2] / "docs" / "otel.md"


def test_the_docs_example_sends_spans_to_the_hub(hub_thread, tmp_path):
    import re

    blocks = re.findall(r"```python\n(# send_to_edgetrace\.py\n.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    (tmp_path / "send_to_edgetrace.py").write_text(blocks[0])
    env = {**_subprocess_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hub_thread.port}"}
    done = subprocess.run([sys.executable, "send_to_edgetrace.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    session = Session(hub_thread.hub.session_path("field-trial"))
    spans = {s.name: s for s in session}
    assert set(spans) == {"GET /forecast", "SELECT forecasts"}
    assert spans["SELECT forecasts"].parent == spans["GET /forecast"].ref
    assert spans["GET /forecast"].node == "otel:weather-api"


def test_hub_forwards_what_agents_ship(tmp_path):
    from edgetrace.agents import Recorder
    from edgetrace.agents._shipper import Shipper
    from edgetrace.agents._spool import Spool

    exporter = InMemorySpanExporter()
    forwarder = OtlpForwarder(exporter, schedule_delay_millis=50)
    spools = {node: Spool(tmp_path / f"{node}.spool") for node in ("n0", "n1")}
    for node, spool in spools.items():
        rec = Recorder(node, spool)
        rec.resume(spool.last_seq, spool.clock)
        for i in range(40):
            rec.record(SpanKind.LOG, "step", trace=f"{node}-{i % 4}")

    async def run() -> None:
        hub = Hub(tmp_path / "data", port=0, on_spans=forwarder)
        forwarder.manifest_of = hub.manifest
        await hub.start()
        shippers = [Shipper(sp, ("127.0.0.1", hub.port), token="", node=node, session="live")
                    for node, sp in spools.items()]
        for s in shippers:
            s.start()
        for s in shippers:
            assert await s.flush(10)
            await s.stop()
        hub.close()

    try:
        asyncio.run(run())
        forwarder.close()
    finally:
        for spool in spools.values():
            spool.close()
    got = _in_memory(exporter).spans()
    live = IdScheme("live")
    assert set(got) == {_sid(f"{n}:{i}", live) for n in ("n0", "n1") for i in range(1, 41)}
    proto, resource = got[_sid("n1:7", live)]
    attrs = {kv.key: _any(kv.value) for kv in proto.attributes}
    assert attrs["edgetrace.vclock"] == "n1=7" and attrs["edgetrace.seq"] == 7
    assert proto.trace_id.hex() == _tid("n1-2", live)
    assert resource["service.instance.id"] == "n1"


def test_chunked_bodies_and_keep_alive(hub_thread):
    import socket

    body = _request_json(["00000000000000d4"], service="chunky")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    head = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    with socket.create_connection(("127.0.0.1", hub_thread.port), timeout=10) as sock:
        for _ in range(2):  # the same connection serves a second request
            sock.sendall(head + chunks)
            reply = b""
            while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):
                reply += sock.recv(4096)
            assert reply.startswith(b"HTTP/1.1 200") and b"Connection: keep-alive" in reply
    session = Session(hub_thread.hub.session_path("otel"))
    assert [(s.node, s.seq) for s in session] == [("otel:chunky", 1)]  # the repeat was a duplicate
