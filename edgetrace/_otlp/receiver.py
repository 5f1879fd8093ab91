"""The OTLP bridge, inbound: the hub takes spans from ordinary OpenTelemetry services.

Two servers next to the hub's agent port share one ingest: OTLP/HTTP (`POST /v1/traces`,
protobuf or JSON, optionally gzip; a small asyncio HTTP/1.1 server, `http11`) and OTLP/gRPC
(`grpcserver`, what `opentelemetry-instrument` sends by default). A request goes client →
decoded (`decode`) → foreign spans (`foreign`) → matched to a session and numbered
(`matching`) → written through the hub's own session writer (`Hub.store_local`), so each
span gets a contiguous, persistent per-node seq like any agent record, and is forwarded like
one.

A request is answered only once its spans are stored (synced per the hub's fsync policy):
a 200 means durable. A child whose parent has not arrived yet is stored at once without a
parent ref; its parent's OTel id stays in `edgetrace.otel.parent_span_id`, so exports give
the link back whatever order the spans came in.

The HTTP port checks the token before it reads a body, times out idle and slow clients, caps
its connections and the sessions one request may name. A request that does not decode gets
HTTP 400 and a one-line reason; nothing a client sends can stop the hub.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from edgetrace._errors import SessionError
from edgetrace._otlp.decode import IngestError, decode_request
from edgetrace._otlp.foreign import ForeignSpan, foreign_spans
from edgetrace._otlp.http11 import (
    read_body,
    read_head,
    status_body,
    success_body,
    write_response,
)
from edgetrace._otlp.matching import SessionMatcher, parents_first
from edgetrace._records import Span, is_session_id

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from edgetrace._hub import Hub

__all__ = ["DEFAULT_OTLP_GRPC_PORT", "DEFAULT_OTLP_PORT", "MAX_SESSIONS_PER_REQUEST", "TRACES_PATH",
           "OtlpReceiver"]

log = logging.getLogger("edgetrace.hub.otlp")

DEFAULT_OTLP_PORT = 4318
DEFAULT_OTLP_GRPC_PORT = 4317
TRACES_PATH = "/v1/traces"
#: Distinct sessions one request may write to; spans naming more are rejected (partial success).
MAX_SESSIONS_PER_REQUEST = 16


class OtlpReceiver:
    """OTLP/HTTP (and, with `grpc_port`, OTLP/gRPC) trace receiver writing into the hub's sessions.

    Register `observe` as (part of) the hub's `on_spans` so foreign spans find the session
    of the edgetrace trace they belong to. `port=None` serves no HTTP (gRPC only).

    Limits: `max_connections` open HTTP connections (more are answered 503 and closed),
    `idle_timeout` seconds for a connection to send its next request head, `read_timeout`
    seconds for a body, `max_body` bytes per body (default: the hub's frame limit).
    """

    def __init__(self, hub: Hub, *, host: str = "127.0.0.1", port: int | None = DEFAULT_OTLP_PORT,
                 session: str = "otel", token: str | None = None, max_body: int | None = None,
                 grpc_host: str | None = None, grpc_port: int | None = None,
                 max_connections: int = 64, idle_timeout: float = 30.0, read_timeout: float = 10.0) -> None:
        if not is_session_id(session):
            from edgetrace._errors import UsageError

            raise UsageError(f"bad session id {session!r}: letters, digits, '.', '_' and '-' only")
        self.hub = hub
        self.host = host
        self.port = port
        self.grpc_host = grpc_host or host
        self.grpc_port = grpc_port
        self.session = session
        self.token = hub.token if token is None else token
        self.max_body = max_body or hub.max_frame
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.received = 0
        self.stored = 0
        self.rejected = 0
        self.bad_requests = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._grpc: Any = None
        self._matcher = SessionMatcher()
        self._touched: set[str] = set()
        self._lock = asyncio.Lock()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> tuple[str, int]:
        """Start listening; return the HTTP address (or the gRPC one when there is no HTTP)."""
        if self.grpc_port is not None:
            from edgetrace._otlp.grpcserver import start_grpc

            self._grpc, self.grpc_port = await start_grpc(self, self.grpc_host, self.grpc_port)
        if self.port is None:
            return self.grpc_host, int(self.grpc_port or 0)
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=2**16)
        sock = self._server.sockets[0].getsockname()
        self.port = sock[1]
        return sock[0], sock[1]

    def close(self) -> None:
        """Stop listening for HTTP (gRPC stops in `aclose`)."""
        if self._server is not None:
            self._server.close()

    async def aclose(self) -> None:
        """Stop listening and seal the sessions that only OTLP clients wrote to."""
        self.close()
        if self._grpc is not None:
            await self._grpc.stop(grace=1.0)
            self._grpc = None
        handlers = [t for t in self._handlers if t is not asyncio.current_task()]
        for task in handlers:  # open keep-alive connections end with the hub
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self.seal_otlp_sessions()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    def seal_otlp_sessions(self) -> list[str]:
        """Seal each session this receiver wrote that holds nothing but OTLP spans: no driver
        will seal it, and readers following it live should know it is complete."""
        from edgetrace._otlp.ids import OTEL_NODE_PREFIX

        sealed = []
        for session in sorted(self._touched):
            try:
                writer = self.hub.protocol.writer(session)
                if not writer.sealed and writer.last_seq and all(
                        n.startswith(OTEL_NODE_PREFIX) for n in writer.last_seq):
                    writer.seal()
                    writer.sync()
                    sealed.append(session)
            except Exception as exc:  # a full disk at shutdown: say so, stop the rest cleanly
                log.warning("cannot seal OTLP session %s: %r", session, exc)
        self._touched.clear()
        return sealed

    def observe(self, session: str, spans: Iterable[Span]) -> None:
        """Hub hook: remember which session each edgetrace trace lives in."""
        self._matcher.observe(session, spans)

    # --- spans in, spans stored ------------------------------------------------------------------

    async def ingest(self, body: bytes, *, content_type: str, content_encoding: str = "") -> tuple[int, list[str]]:
        """Decode and store one HTTP request body; return spans stored and reasons for rejected ones."""
        request = decode_request(body, content_type=content_type, content_encoding=content_encoding,
                                 max_size=self.max_body)
        return await self.ingest_request(request)

    async def ingest_request(self, request: ExportTraceServiceRequest) -> tuple[int, list[str]]:
        """Store the spans of a decoded request before returning: the caller acks after this."""
        spans, rejected = foreign_spans(request)
        self.received += len(spans) + len(rejected)
        by_session: dict[str, list[ForeignSpan]] = {}
        for span in spans:
            session = self._matcher.session_of(span, self.session)
            if session not in by_session and len(by_session) >= MAX_SESSIONS_PER_REQUEST:
                rejected.append(f"span {span.name[:40]!r}: the request names more than "
                                f"{MAX_SESSIONS_PER_REQUEST} sessions")
                continue
            by_session.setdefault(session, []).append(span)
        self.rejected += len(rejected)
        stored = 0
        async with self._lock:  # one request numbers at a time: parents in hand stay in hand
            for session, items in sorted(by_session.items()):
                self._load(session)
                fresh = [s for s in items if not self._matcher.stored(session, s)]
                if not fresh:
                    continue  # a client retry of spans already stored
                build = functools.partial(self._matcher.number, session=session, spans=parents_first(fresh))
                stored += len(await self.hub.store_local(session, build))
                self._touched.add(session)
        self.stored += stored
        return stored, rejected

    def _load(self, session: str) -> None:
        """Read what `session` holds the first time we touch it, so dedup survives restarts."""
        if self._matcher.loaded(session):
            return
        try:
            existing = list(self.hub.store.read(session).spans)
        except SessionError:  # no such session yet (a damaged one fails when it is written to)
            existing = []
        self._matcher.load(session, existing)

    # --- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self.connections >= self.max_connections:
            try:
                await self._respond(writer, 503, f"too many connections (limit {self.max_connections}); retry later",
                                    "", keep=False)
            except (OSError, ConnectionError):
                pass
            writer.close()
            return
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.info("OTLP connection from %s ended: %s", peer, exc)
        except TimeoutError:
            log.info("OTLP connection from %s timed out", peer)
        except Exception as exc:  # never let a client take the hub down
            log.warning("OTLP connection from %s closed after an internal error: %r", peer, exc)
        finally:
            self.connections -= 1
            if task is not None:
                self._handlers.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            head = await asyncio.wait_for(read_head(reader), self.idle_timeout)
        except IngestError as exc:
            self.bad_requests += 1
            await self._respond(writer, exc.status, exc.reason, "", keep=False)
            return False
        if head is None:
            return False
        keep = head.keep_alive
        media = head.media
        # everything that needs no body is decided before reading one
        if head.path != TRACES_PATH:
            reason = f"no such endpoint {head.path[:60]!r}; OTLP traces go to POST {TRACES_PATH}"
            await self._respond(writer, 404, reason, media, keep=False)
            return False
        if head.method != "POST":
            await self._respond(writer, 405, f"{head.method[:10]} not allowed; use POST", media, keep=False)
            return False
        if self.token and not self._authorized(head.headers):
            self.bad_requests += 1
            await self._respond(writer, 401, "missing or wrong token (send 'Authorization: Bearer TOKEN')",
                                media, keep=False)
            return False
        try:
            body = await asyncio.wait_for(read_body(reader, head, self.max_body), self.read_timeout)
        except IngestError as exc:
            self.bad_requests += 1
            await self._respond(writer, exc.status, exc.reason, media, keep=False)
            return False
        except TimeoutError:
            self.bad_requests += 1
            await self._respond(writer, 408, f"body not received within {self.read_timeout:g}s", media, keep=False)
            return False
        try:
            _, rejected = await self.ingest(body, content_type=head.headers.get("content-type", ""),
                                            content_encoding=head.headers.get("content-encoding", ""))
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
        body, ctype = success_body(rejected, media)
        await write_response(writer, 200, body, ctype, keep)
        return keep

    def _authorized(self, headers: dict[str, str]) -> bool:
        return token_matches(headers, self.token)

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, reason: str, media: str, keep: bool) -> None:
        body, ctype = status_body(reason, media)
        await write_response(writer, status, body, ctype, keep)


def token_matches(headers: dict[str, str], token: str) -> bool:
    """`Authorization: Bearer TOKEN` (or `x-edgetrace-token`) against the hub's token, in constant time."""
    given = headers.get("authorization", "")
    given = given[7:].strip() if given.lower().startswith("bearer ") else headers.get("x-edgetrace-token", "")
    return hmac.compare_digest(given.encode(), token.encode())
