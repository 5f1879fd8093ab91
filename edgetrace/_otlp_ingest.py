"""The OTLP bridge, inbound: the hub takes spans from ordinary OpenTelemetry services.

A small asyncio HTTP/1.1 server answers `POST /v1/traces` (OTLP/HTTP, protobuf or JSON,
optionally gzip) next to the hub's agent port. Each foreign span becomes a record of kind
`otel` on a node named after its service (`otel:checkout`) and is written through the hub's
own session writer, so it gets a contiguous, persistent per-node seq like any agent record.

Foreign spans carry no vector clock: within one request they are numbered parents first,
then by start time, and marked `edgetrace.untimed` / `edgetrace.order=timestamp`. They join
the session that already holds their trace (the hub watches the trace ids agents ship, and
an edgetrace trace id maps to an OTel trace id the same way `edgetrace export` maps it),
else the session named by the resource attribute `edgetrace.session.id`, else the
receiver's default session. Their own span ids are kept as attributes so an export gives
them back unchanged.

A request that does not decode gets HTTP 400 and a one-line reason; nothing a client sends
can stop the hub.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._otlp.ids import OTEL_NODE_PREFIX, otel_span_id, otel_trace_id
from edgetrace._otlp.mapping import ATTR_LIMIT
from edgetrace._records import Manifest, Span, SpanKind, Status, is_session_id

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    from edgetrace._hub import Hub
    from edgetrace._session import SessionWriter

__all__ = [
    "DEFAULT_OTLP_PORT",
    "ForeignSpan",
    "IngestError",
    "OtlpReceiver",
    "decode_request",
    "foreign_spans",
]

log = logging.getLogger("edgetrace.hub.otlp")

DEFAULT_OTLP_PORT = 4318
TRACES_PATH = "/v1/traces"
_SERVICE = re.compile(r"[^A-Za-z0-9._/-]+")
_MAX_HEADERS = 100
_MAX_DEPTH = 8
_REMEMBER = 200_000  # trace ids, span ids and seen spans kept for matching (each an LRU)
_KIND_NAMES = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


class IngestError(ValueError):
    """A request the receiver cannot take; `status` is the HTTP status to answer with."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = " ".join(reason.split())[:300]
        self.status = status


# --- decoding --------------------------------------------------------------------------------


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise IngestError(f"body is not valid gzip: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise IngestError(f"body inflates to more than {limit} bytes", status=413)
    if not inflater.eof:
        raise IngestError("gzip body is truncated")
    return data


def _hex_to_b64(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        raise IngestError(f"{where} is not hex: {value[:40]!r}") from None


def _json_ids_to_b64(doc: Any) -> None:
    """OTLP/JSON writes ids as hex where protobuf's JSON mapping expects base64."""
    if not isinstance(doc, dict):
        raise IngestError("JSON body is not an object")
    for rs in _items(doc, "resourceSpans", "resource_spans"):
        for ss in _items(rs, "scopeSpans", "scope_spans"):
            for i, span in enumerate(_items(ss, "spans")):
                for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
                    if key in span:
                        span[key] = _hex_to_b64(span[key], f"spans[{i}].{key}")
                for link in _items(span, "links"):
                    for key in ("traceId", "trace_id", "spanId", "span_id"):
                        if key in link:
                            link[key] = _hex_to_b64(link[key], f"spans[{i}].links.{key}")


def _items(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if isinstance(value, list):
            return [v for v in value if isinstance(v, dict)]
    return []


def decode_request(
    body: bytes, *, content_type: str = "application/x-protobuf", content_encoding: str = "",
    max_size: int = 16 * 1024 * 1024,
) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP trace request body; raise `IngestError` saying what is wrong."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, max_size)
    elif encoding not in ("", "identity"):
        raise IngestError(f"unsupported Content-Encoding {encoding!r}; expected gzip or none", 415)
    if len(body) > max_size:
        raise IngestError(f"body is larger than {max_size} bytes", status=413)
    media = content_type.split(";")[0].strip().lower()
    request = ExportTraceServiceRequest()
    if media in ("application/x-protobuf", "application/protobuf"):
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise IngestError(f"body is not an OTLP protobuf ExportTraceServiceRequest: {exc}") from None
    elif media == "application/json":
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise IngestError(f"body is not JSON: {exc}") from None
        _json_ids_to_b64(doc)
        try:
            json_format.ParseDict(doc, request, ignore_unknown_fields=True)
        except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as exc:
            raise IngestError(f"JSON is not an OTLP ExportTraceServiceRequest: {exc}") from None
    else:
        raise IngestError(
            f"unsupported Content-Type {media or '(none)'!r}; expected application/x-protobuf "
            "or application/json", 415)
    return request


def _clip(text: str) -> str:
    return text if len(text) <= ATTR_LIMIT else text[: ATTR_LIMIT - 1] + "…"


def _value(v: AnyValue, depth: int = 0) -> Any:
    """An OTLP AnyValue as a plain, msgpack-able Python value."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return _clip(v.string_value)
    if which == "bytes_value":
        return _clip(v.bytes_value.hex())
    if which in ("bool_value", "int_value", "double_value"):
        return getattr(v, which)
    if depth >= _MAX_DEPTH:
        return "…"
    if which == "array_value":
        return [_value(x, depth + 1) for x in v.array_value.values[:256]]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value, depth + 1) for kv in v.kvlist_value.values[:256]}
    return None


def _attrs(kvs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs if kv.key}


@dataclass
class ForeignSpan:
    """One span as received, before the hub numbers it and files it in a session."""

    node: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str  # 16 hex digits or ""
    name: str
    start: int
    end: int
    attrs: dict[str, Any] = field(default_factory=dict)
    status: Status = Status.OK
    error: str = ""
    session: str = ""  # from the resource attribute edgetrace.session.id, if valid


def foreign_spans(request: ExportTraceServiceRequest) -> tuple[list[ForeignSpan], list[str]]:
    """The spans of a request, and one reason per span rejected (bad ids)."""
    found: list[ForeignSpan] = []
    rejected: list[str] = []
    for rs in request.resource_spans:
        resource = _attrs(rs.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")
        node = OTEL_NODE_PREFIX + (_SERVICE.sub("_", service)[:100] or "unknown_service")
        session = str(resource.get(attr.SESSION_ID) or "")
        if not is_session_id(session):
            session = ""
        base = {"service.name": _clip(service)}
        for key in ("service.instance.id", "service.version", "host.name"):
            if key in resource:
                base[key] = resource[key]
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for s in ss.spans:
                if len(s.trace_id) != 16 or not any(s.trace_id):
                    rejected.append(f"span {s.name[:40]!r}: trace id is not 16 non-zero bytes")
                    continue
                if len(s.span_id) != 8 or not any(s.span_id):
                    rejected.append(f"span {s.name[:40]!r}: span id is not 8 non-zero bytes")
                    continue
                parent = s.parent_span_id.hex() if len(s.parent_span_id) == 8 and any(s.parent_span_id) else ""
                attrs = {**base, **_attrs(s.attributes)}
                attrs[attr.OTEL_SPAN_ID] = s.span_id.hex()
                if parent:
                    attrs[attr.OTEL_PARENT_SPAN_ID] = parent
                attrs[attr.OTEL_KIND] = _KIND_NAMES.get(s.kind, "INTERNAL")
                if scope:
                    attrs["otel.scope.name"] = _clip(scope)
                if s.events:
                    attrs[attr.OTEL_EVENTS] = [_clip(e.name) for e in s.events[:64]]
                if s.links:
                    attrs[attr.OTEL_LINKS] = [f"{x.trace_id.hex()}:{x.span_id.hex()}" for x in s.links[:64]]
                attrs[attr.UNTIMED] = True
                attrs[attr.ORDER] = "timestamp"
                failed = s.status.code == 2  # STATUS_CODE_ERROR
                start = s.start_time_unix_nano
                found.append(ForeignSpan(
                    node=node, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(), parent_id=parent,
                    name=_clip(s.name) or "(unnamed)", start=start, end=max(start, s.end_time_unix_nano),
                    attrs=attrs, status=Status.ERROR if failed else Status.OK,
                    error=_clip(s.status.message or "error") if failed else "", session=session,
                ))
    return found, rejected


def parents_first(spans: Sequence[ForeignSpan]) -> list[ForeignSpan]:
    """Start-time order, except that a parent in the same batch always comes before its child."""
    by_id = {s.span_id: s for s in spans}
    done: set[str] = set()
    out: list[ForeignSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end, s.node, s.span_id)):
        chain = []
        cur: ForeignSpan | None = span
        while cur is not None and cur.span_id not in done:
            done.add(cur.span_id)  # marks before recursing, so a parent cycle ends here
            chain.append(cur)
            cur = by_id.get(cur.parent_id)
        out.extend(reversed(chain))
    return out


class _Lru(OrderedDict[Any, Any]):
    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > _REMEMBER:
            self.popitem(last=False)


# --- the receiver ----------------------------------------------------------------------------


def _status_body(message: str, media: str) -> tuple[bytes, str]:
    """The error body OTLP/HTTP asks for: a google.rpc.Status (code 3, INVALID_ARGUMENT)."""
    if media == "application/json":
        return json.dumps({"code": 3, "message": message}).encode(), "application/json"
    if media in ("application/x-protobuf", "application/protobuf"):
        raw = message.encode()
        length = bytearray()
        n = len(raw)
        while True:
            length.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                break
        return b"\x08\x03\x12" + bytes(length) + raw, "application/x-protobuf"
    return (message + "\n").encode(), "text/plain; charset=utf-8"


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large",
            415: "Unsupported Media Type", 500: "Internal Server Error"}


class OtlpReceiver:
    """OTLP/HTTP trace receiver writing foreign spans into the hub's sessions.

    Register `observe` as (part of) the hub's `on_spans` so foreign spans find the session
    of the edgetrace trace they belong to.

    SDKs export a span when it *ends*, so a child usually arrives before its parent, often
    in another request. A span whose parent is neither stored nor in hand waits (up to
    `grace` seconds) so the parent can be numbered first and the child can name it; after
    that it is stored with no parent ref (the raw id stays in `edgetrace.otel.parent_span_id`).
    Spans that wait are acknowledged before they are on disk; `aclose()` stores them.
    """

    def __init__(self, hub: Hub, *, host: str = "127.0.0.1", port: int = DEFAULT_OTLP_PORT,
                 session: str = "otel", token: str | None = None, max_body: int | None = None,
                 grace: float = 2.0) -> None:
        if not is_session_id(session):
            from edgetrace._errors import UsageError

            raise UsageError(f"bad session id {session!r}: letters, digits, '.', '_' and '-' only")
        self.hub = hub
        self.host = host
        self.port = port
        self.session = session
        self.token = hub.token if token is None else token
        self.max_body = max_body or hub.max_frame
        self.grace = grace
        self.received = 0
        self.stored = 0
        self.rejected = 0
        self.bad_requests = 0
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._traces: _Lru = _Lru()  # otel trace id hex -> (session, edgetrace trace id)
        self._native: _Lru = _Lru()  # (session, otel span id hex) -> ref of an edgetrace span
        self._refs: _Lru = _Lru()  # (session, trace hex, span hex) -> ref of a stored foreign span
        self._known: set[tuple[str, str]] = set()
        # (session, trace hex) -> (first arrival, {span hex: span}) of spans waiting for a parent
        self._pending: dict[tuple[str, str], tuple[float, dict[str, ForeignSpan]]] = {}

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=2**16)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        sock = self._server.sockets[0].getsockname()
        self.port = sock[1]
        return sock[0], sock[1]

    def close(self) -> None:
        """Stop listening (spans still waiting for a parent are kept until `aclose`)."""
        if self._server is not None:
            self._server.close()

    async def aclose(self) -> None:
        """Stop listening and store every span still waiting for its parent."""
        self.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
            self._sweeper = None
        await self.flush(everything=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    # --- what the agents ship ------------------------------------------------------------------

    def observe(self, session: str, spans: Iterable[Span]) -> None:
        """Hub hook: remember which session each edgetrace trace lives in."""
        for span in spans:
            if span.kind is SpanKind.OTEL or not span.trace:
                continue
            key = (session, span.trace)
            if key not in self._known:
                if len(self._known) > _REMEMBER:
                    self._known.clear()
                self._known.add(key)
                self._traces.remember(f"{otel_trace_id(span.trace):032x}", key)
            self._native.remember((session, f"{otel_span_id(span.ref):016x}"), span.ref)

    # --- one request -----------------------------------------------------------------------------

    async def ingest(self, body: bytes, *, content_type: str, content_encoding: str = "") -> tuple[int, list[str]]:
        """Decode and store one request; return spans stored now and reasons for rejected ones."""
        request = decode_request(body, content_type=content_type, content_encoding=content_encoding,
                                 max_size=self.max_body)
        spans, rejected = foreign_spans(request)
        self.received += len(spans) + len(rejected)
        self.rejected += len(rejected)
        now = time.monotonic()
        touched: set[tuple[str, str]] = set()
        for span in spans:
            target = self._traces.get(span.trace_id)
            session = target[0] if target else (span.session or self.session)
            if (session, span.trace_id, span.span_id) in self._refs:
                continue  # a client retry of a span already stored
            key = (session, span.trace_id)
            entry = self._pending.setdefault(key, (now, {}))
            entry[1][span.span_id] = span
            touched.add(key)
        ready = [key for key in sorted(touched) if self._complete(key)]
        return await self._store(ready), rejected

    def _complete(self, key: tuple[str, str]) -> bool:
        session, trace = key
        waiting = self._pending[key][1]
        return all(
            not s.parent_id or s.parent_id in waiting or (session, trace, s.parent_id) in self._refs
            or (session, s.parent_id) in self._native
            for s in waiting.values()
        )

    async def flush(self, *, everything: bool = False) -> int:
        """Store traces whose missing parents have not come within the grace period."""
        limit = time.monotonic() - self.grace
        due = [key for key, (since, _) in self._pending.items() if everything or since <= limit]
        return await self._store(sorted(due))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.grace / 4))
            try:
                await self.flush()
            except Exception as exc:  # a full disk must not end the sweeper
                log.warning("storing OTLP spans failed: %r", exc)

    async def _store(self, keys: list[tuple[str, str]]) -> int:
        groups: dict[str, list[ForeignSpan]] = {}
        for key in keys:
            entry = self._pending.pop(key, None)
            if entry is not None:
                groups.setdefault(key[0], []).extend(parents_first(list(entry[1].values())))
        stored = 0
        for session, items in sorted(groups.items()):
            records = await self.hub.store_local(session, lambda w, s=session, o=items: self._number(w, s, o))
            stored += len(records)
        self.stored += stored
        return stored

    def _number(self, writer: SessionWriter, session: str, spans: list[ForeignSpan]) -> list[Span]:
        """Runs under the session lock: give each span the next seq of its node."""
        out: list[Span] = []
        next_seq: dict[str, int] = {}
        for fs in spans:
            seen_key = (session, fs.trace_id, fs.span_id)
            if seen_key in self._refs:
                continue  # a client retry of spans already stored
            seq = next_seq.get(fs.node, writer.last_seq.get(fs.node, 0)) + 1
            next_seq[fs.node] = seq
            ref = f"{fs.node}:{seq}"
            parent = ""
            if fs.parent_id:
                parent = (self._refs.get((session, fs.trace_id, fs.parent_id))
                          or self._native.get((session, fs.parent_id)) or "")
            self._refs.remember(seen_key, ref)
            target = self._traces.get(fs.trace_id)
            trace = target[1] if target and target[0] == session else fs.trace_id
            out.append(Span(node=fs.node, seq=seq, kind=SpanKind.OTEL, name=fs.name, trace=trace,
                            parent=parent, start=fs.start, end=fs.end, attrs=fs.attrs,
                            status=fs.status, error=fs.error))
        new_nodes = sorted(set(next_seq) - set(writer.manifest.nodes))
        if new_nodes:
            writer.write_manifest(Manifest(nodes=new_nodes))
        return out

    # --- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while await self._one(reader, writer):
                pass
        except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.info("OTLP connection from %s ended: %s", peer, exc)
        except Exception as exc:  # never let a client take the hub down
            log.warning("OTLP connection from %s closed after an internal error: %r", peer, exc)
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return whether the connection stays open."""
        line = await reader.readline()
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._respond(writer, 400, "malformed HTTP request line", "", keep=False)
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                await self._respond(writer, 400, "malformed HTTP header line", "", keep=False)
                return False
            headers[name.strip().lower()] = value.strip()
        else:
            await self._respond(writer, 400, "too many HTTP headers", "", keep=False)
            return False
        conn = headers.get("connection", "").lower()
        keep = conn != "close" and (version == "HTTP/1.1" or conn == "keep-alive")
        try:
            body = await self._body(reader, headers)
        except IngestError as exc:
            self.bad_requests += 1
            await self._respond(writer, exc.status, exc.reason, "", keep=False)
            return False
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        path = target.split("?")[0]
        if path != TRACES_PATH:
            await self._respond(writer, 404, f"no such endpoint {path[:60]!r}; OTLP traces go to "
                                f"POST {TRACES_PATH}", media, keep)
            return keep
        if method != "POST":
            await self._respond(writer, 405, f"{method[:10]} not allowed; use POST", media, keep)
            return keep
        if self.token and not self._authorized(headers):
            await self._respond(writer, 401, "missing or wrong token (send 'Authorization: Bearer TOKEN')",
                                media, keep)
            return keep
        try:
            _, rejected = await self.ingest(body, content_type=headers.get("content-type", ""),
                                                 content_encoding=headers.get("content-encoding", ""))
        except IngestError as exc:
            self.bad_requests += 1
            log.warning("OTLP request refused: %s", exc.reason)
            await self._respond(writer, exc.status, exc.reason, media, keep)
            return keep
        except Exception as exc:  # a bug or a full disk: the client may retry, the hub carries on
            log.warning("OTLP request failed: %r", exc)
            await self._respond(writer, 500, f"the hub could not store the spans: {type(exc).__name__}",
                                media, keep)
            return keep
        await self._success(writer, media, rejected, keep)
        return keep

    def _authorized(self, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        given = given[7:].strip() if given.lower().startswith("bearer ") else headers.get("x-edgetrace-token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        limit = self.max_body
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = (await reader.readline()).split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise IngestError("malformed chunk size") from None
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if size < 0 or total > limit:
                    raise IngestError(f"body is larger than {limit} bytes", status=413)
                chunks.append(await reader.readexactly(size))
                await reader.readline()
        length = headers.get("content-length", "0")
        if not length.isdigit():
            raise IngestError(f"bad Content-Length {length[:20]!r}")
        if int(length) > limit:
            raise IngestError(f"body is larger than {limit} bytes", status=413)
        return await reader.readexactly(int(length))

    async def _success(self, writer: asyncio.StreamWriter, media: str, rejected: list[str], keep: bool) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = len(rejected)
            response.partial_success.error_message = f"{len(rejected)} span(s) rejected; first: {rejected[0]}"
        if media == "application/json":
            from google.protobuf import json_format

            body, ctype = json_format.MessageToJson(response, indent=None).encode(), "application/json"
        else:
            body, ctype = response.SerializeToString(), "application/x-protobuf"
        await self._write(writer, 200, body, ctype, keep)

    async def _respond(self, writer: asyncio.StreamWriter, status: int, reason: str, media: str, keep: bool) -> None:
        body, ctype = _status_body(reason, media)
        await self._write(writer, status, body, ctype, keep)

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str, keep: bool) -> None:
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()
