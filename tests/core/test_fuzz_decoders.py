"""Every decoder that reads what the network or a file hands it: no crash, bounded memory, a clean refusal (issue 14).

Random bytes mostly fail at the first byte, so these start from *valid* input — a hello, a
records batch, a peer hello and message, an OTLP request in protobuf and JSON, a session
file, a spool, a manifest — and damage it the ways wires and disks do: flipped bits, bytes
overwritten, inserted or deleted, a cut, a run of zeros, a length or count made huge. A
decoder must then accept it or refuse it with the package's own error (the hub: an error
that drops only that connection). tests/core/test_hub.py, test_otel.py and
tests/agents/test_spool.py fuzz the same decoders with unstructured garbage and truncation.
"""

from __future__ import annotations

import json
import resource
import zlib

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetrace import EdgeTraceError, Manifest, Session, SessionWriter, Span, SpanKind
from edgetrace._codec import decode_manifest, encode_manifest, encode_spans
from edgetrace._credentials import PeerSecurity
from edgetrace._hub_protocol import DROPS_CONNECTION, HubProtocol
from edgetrace._otlp.decode import IngestError, decode_request
from edgetrace._otlp.foreign import foreign_spans
from edgetrace._store import MemorySessionStore
from edgetrace._wire import Hello, Records, Seal, encode_hub
from edgetrace.agents import MemorySink, Recorder
from edgetrace.agents._live import LiveWorld, encode_message, encode_peer_hello
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._spool import Spool
from edgetrace.tui._store import TraceStore

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
TOKEN = "fuzz"


@st.composite
def damaged(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid`, damaged 1-4 times the ways wires and disks damage bytes."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "byte", "insert", "delete", "cut", "zeros", "huge"]))
        if how == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "byte":
            data[at] = draw(st.integers(0, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif how == "cut":
            del data[at:]
        elif how == "zeros":
            data[at:at + draw(st.integers(1, 64))] = bytes(min(64, len(data) - at))
        else:  # a length, count or size made as large as it goes
            data[at:at + 4] = b"\xff\xff\xff\xff"
    return bytes(data)


def _spans(node: str, n: int) -> list[Span]:
    return [Span(node=node, seq=i, kind=SpanKind.LOG, name="step", trace=f"t{i}", start=i * 10, end=i * 10 + 5,
                 vc={node: i}, attrs={"k": i, "s": "x" * 5}) for i in range(1, n + 1)]


_MANIFEST = Manifest(session_id="s1", app="fuzz", app_ref="fuzz:app", nodes=["a"], meta={"grid": {}})
_HELLO = encode_hub(Hello(token=TOKEN, node="a", session="s1", manifest=_MANIFEST))[4:]
_RECORDS = encode_hub(Records(spans=zlib.compress(encode_spans(_spans("a", 5))), zlib=True))[4:]
_PLAIN_RECORDS = encode_hub(Records(spans=encode_spans(_spans("a", 5))))[4:]


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    """Every test here together may not grow the process's peak RSS by more than 128 MiB."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown < 128, f"fuzzing the decoders grew the peak RSS by {grown:.0f} MiB"


# --- the network: the hub's frames, the peer port, OTLP --------------------------------------------


@FUZZ
@given(st.data())
def test_the_hub_answers_or_drops_a_damaged_hello_or_batch(data):
    store = MemorySessionStore()
    hub = HubProtocol(store, token=TOKEN)
    conn = hub.connect()
    which = data.draw(st.sampled_from(["hello", "records", "plain records"]))
    hello = data.draw(damaged(_HELLO)) if which == "hello" else _HELLO
    try:
        conn.receive_frame(hello)
        if not conn.closed:
            conn.receive_frame(data.draw(damaged(_RECORDS if which == "records" else _PLAIN_RECORDS))
                               if which != "hello" else _RECORDS)
            conn.receive_frame(encode_hub(Seal(session="s1"))[4:])
    except DROPS_CONNECTION:
        pass
    for session in store.sessions():  # whatever was stored, every reader reads
        got = store.read(session)
        assert all(s.seq >= 1 for s in got.spans)


def _world() -> tuple[LiveWorld, list[Message]]:
    got: list[Message] = []
    world = LiveWorld("n1", MemorySink(), epoch_ns=0, peers={}, security=PeerSecurity(token=TOKEN))
    world._deliver = got.append
    return world, got


_PEER_HELLO = encode_peer_hello(TOKEN, "n2")[4:]
_PEER_MESSAGE = encode_message(Message(kind=MessageKind.SEND, src="n2", dst="n1", topic="hi", payload={"a": [1]},
                                       vc={"n2": 3}))[4:]


@FUZZ
@given(st.data())
def test_the_peer_port_takes_a_damaged_hello_or_message_or_refuses_it(data):
    from edgetrace._errors import FrameError
    from edgetrace.agents._live import _decoder

    world, got = _world()
    try:
        caller, first = world._greet(data.draw(damaged(_PEER_HELLO)))
        assert caller is not None or first is None or world.security.token == ""
    except FrameError:
        pass
    world, got = _world()
    body = data.draw(damaged(_PEER_MESSAGE))
    try:
        world._take(_decoder.decode(body), "n2")
    except (FrameError, msgspec.DecodeError, msgspec.ValidationError):
        return
    assert all(m.src == "n2" and m.dst == "n1" for m in got)
    assert not world.stop_requested.is_set()


def _otlp_json() -> bytes:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "pay"}}]},
        "scopeSpans": [{"scope": {"name": "m"}, "spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": f"00000000000000a{i}",
             "parentSpanId": "00000000000000a0" if i else "", "name": f"op{i}", "kind": 2,
             "startTimeUnixNano": str(1_700_000_000_000_000_000 + i), "endTimeUnixNano": str(1_700_000_000_000_000_100),
             "attributes": [{"key": "n", "value": {"intValue": str(i)}},
                            {"key": "l", "value": {"arrayValue": {"values": [{"doubleValue": 1.5}]}}}],
             "status": {"code": 2, "message": "boom"}} for i in range(3)]}]}]}).encode()


def _otlp_protobuf() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    name = resource.resource.attributes.add()
    name.key, name.value.string_value = "service.name", "pay"
    scope = resource.scope_spans.add()
    scope.scope.name = "m"
    for i in range(3):
        span = scope.spans.add()
        span.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
        span.span_id = bytes.fromhex(f"00000000000000a{i}")
        if i:
            span.parent_span_id = bytes.fromhex("00000000000000a0")
        span.name, span.kind = f"op{i}", 2
        span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000 + i, 1_700_000_000_000_000_100
        attr = span.attributes.add()
        attr.key, attr.value.int_value = "n", i
        span.status.code, span.status.message = 2, "boom"
    return request.SerializeToString()


@FUZZ
@given(st.data(), st.sampled_from(["application/x-protobuf", "application/json"]))
def test_a_damaged_otlp_request_decodes_or_is_a_400(data, ctype):
    valid = _otlp_protobuf() if ctype == "application/x-protobuf" else _otlp_json()
    try:
        request = decode_request(data.draw(damaged(valid)), content_type=ctype)
    except IngestError as exc:
        assert exc.status in (400, 413, 415) and "\n" not in exc.reason
        return
    foreign_spans(request)


# --- files: sessions, spools, manifests ----------------------------------------------------------


@pytest.fixture(scope="module")
def session_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "s.ets"
    with SessionWriter(path, _MANIFEST) as w:
        w.put_blob(b"payload " * 20)
        w.append(_spans("a", 20))
        w.append(_spans("b", 20))
        w.seal()
    return path.read_bytes()


@FUZZ
@given(st.data())
def test_a_damaged_session_file_is_read_or_refused_by_every_reader(tmp_path_factory, session_bytes, data):
    path = tmp_path_factory.mktemp("s") / "s.ets"
    path.write_bytes(data.draw(damaged(session_bytes)))
    for open_it in (lambda: Session(path), lambda: Session(path, salvage=True)):
        try:
            session = open_it()
            session.spans, session.manifest, session.salvage_report()
            for span in session.spans[:3]:
                session.index.clock(span)
        except EdgeTraceError:
            pass
    try:
        store = TraceStore(path)
        while store.scan() and not store.at_end:
            pass
        for row in list(store.rows)[:3]:
            store.graph(row.trace)
    except EdgeTraceError:
        pass


@pytest.fixture(scope="module")
def spool_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("fuzzspool") / "a.spool"
    spool = Spool(path)
    rec = Recorder("a", spool)
    for i in range(30):
        rec.record(SpanKind.LOG, "tick", trace=f"t{i}", blobs={"input": rec.blob(f"in{i}".encode())})
    spool.flush()
    spool.ack(10)
    spool.close()
    return path.read_bytes()


@FUZZ
@given(st.data())
def test_a_damaged_spool_opens_and_ships_what_is_intact_or_is_refused(tmp_path_factory, spool_bytes, data):
    path = tmp_path_factory.mktemp("p") / "a.spool"
    path.write_bytes(data.draw(damaged(spool_bytes)))
    try:
        spool = Spool(path)
    except EdgeTraceError:
        return
    try:
        after = 0
        for _ in range(100):
            pending = spool.pending(after, limit=7)
            if not pending.spans:
                break
            after = pending.spans[-1].seq
        spool.unacked  # noqa: B018
    finally:
        spool.close()


@FUZZ
@given(st.data())
def test_a_damaged_manifest_decodes_or_is_refused(data):
    try:
        manifest = decode_manifest(data.draw(damaged(encode_manifest(_MANIFEST))))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    _MANIFEST.merged(manifest)
    manifest.conflicts(_MANIFEST)


def test_the_fuzzed_inputs_are_valid_before_they_are_damaged(session_bytes, spool_bytes, tmp_path):
    (tmp_path / "s.ets").write_bytes(session_bytes)
    assert len(Session(tmp_path / "s.ets").spans) == 40
    (tmp_path / "a.spool").write_bytes(spool_bytes)
    spool = Spool(tmp_path / "a.spool")
    assert spool.unacked == 20
    spool.close()
    assert decode_manifest(encode_manifest(_MANIFEST)) == _MANIFEST
    assert len(foreign_spans(decode_request(_otlp_protobuf()))[0]) == 3
    assert len(foreign_spans(decode_request(_otlp_json(), content_type="application/json"))[0]) == 3
    world, _ = _world()
    assert world._greet(_PEER_HELLO) == ("n2", None)
    hub = HubProtocol(MemorySessionStore(), token=TOKEN)
    conn = hub.connect()
    conn.receive_frame(_HELLO)
    conn.receive_frame(_RECORDS)
    assert hub.stats.records == 5
