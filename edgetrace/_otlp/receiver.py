"""The OTLP bridge, inbound: the hub takes spans from ordinary OpenTelemetry services.

A small asyncio HTTP/1.1 server answers `POST /v1/traces` (OTLP/HTTP, protobuf or JSON,
optionally gzip) next to the hub's agent port. A request goes client → HTTP (`http11`) →
decoded (`decode`) → foreign spans (`foreign`) → held until parents are in hand (`buffer`)
→ matched to a session and numbered (`matching`) → written through the hub's own session
writer (`Hub.store_local`), so each span gets a contiguous, persistent per-node seq like any
agent record, and is forwarded like one.

A request that does not decode gets HTTP 400 and a one-line reason; nothing a client sends
can stop the hub. The port is admitted like the hub's (edgetrace._gate): a connection cap,
request headers within the handshake deadline, and the token is checked on the headers,
before a byte of the body is read (a refused request's connection is closed).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from edgetrace._gate import Gate
from edgetrace._otlp.buffer import Key, ParentBuffer
from edgetrace._otlp.decode import IngestError, decode_request
from edgetrace._otlp.foreign import foreign_spans
from edgetrace._otlp.http11 import (
    RequestHead,
    read_body,
    read_head,
    status_body,
    success_body,
    write_response,
)
from edgetrace._otlp.matching import SessionMatcher
from edgetrace._records import Span, is_session_id

if TYPE_CHECKING:
    from edgetrace._hub import Hub

__all__ = ["DEFAULT_OTLP_PORT", "TRACES_PATH", "OtlpReceiver"]

log = logging.getLogger("edgetrace.hub.otlp")

DEFAULT_OTLP_PORT = 4318
TRACES_PATH = "/v1/traces"


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
        self.gate = Gate(hub.gate.limits)
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._matcher = SessionMatcher()
        self._waiting = ParentBuffer()

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

    def observe(self, session: str, spans: Iterable[Span]) -> None:
        """Hub hook: remember which session each edgetrace trace lives in."""
        self._matcher.observe(session, spans)

    # --- spans in, spans stored ------------------------------------------------------------------

    async def ingest(self, body: bytes, *, content_type: str, content_encoding: str = "") -> tuple[int, list[str]]:
        """Decode and store one request; return spans stored now and reasons for rejected ones."""
        request = decode_request(body, content_type=content_type, content_encoding=content_encoding,
                                 max_size=self.max_body)
        spans, rejected = foreign_spans(request)
        self.received += len(spans) + len(rejected)
        self.rejected += len(rejected)
        now = time.monotonic()
        touched: set[Key] = set()
        for span in spans:
            session = self._matcher.session_of(span, self.session)
            if self._matcher.stored(session, span):
                continue  # a client retry of a span already stored
            touched.add(self._waiting.add(session, span, now))
        ready = [key for key in sorted(touched) if self._waiting.complete(key, self._matcher.parent_ref)]
        return await self._store(ready), rejected

    async def flush(self, *, everything: bool = False) -> int:
        """Store traces whose missing parents have not come within the grace period."""
        return await self._store(self._waiting.due(time.monotonic() - self.grace, everything=everything))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.grace / 4))
            try:
                await self.flush()
            except Exception as exc:  # a full disk must not end the sweeper
                log.warning("storing OTLP spans failed: %r", exc)

    async def _store(self, keys: list[Key]) -> int:
        stored = 0
        for session, items in sorted(self._waiting.take(keys).items()):
            build = functools.partial(self._matcher.number, session=session, spans=items)
            stored += len(await self.hub.store_local(session, build))
        self.stored += stored
        return stored

    # --- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ticket = self.gate.admit(str(peer[0]) if isinstance(peer, tuple) else str(peer), writer.transport.abort)
        if ticket is None:
            writer.close()
            return
        limits = self.gate.limits
        try:
            first = True
            while True:
                # a client that has not yet been let in gets the handshake deadline for its headers
                wait = limits.handshake_timeout if first else limits.idle_timeout
                try:
                    head = await asyncio.wait_for(read_head(reader), wait)
                except IngestError as exc:
                    await self._respond(writer, exc.status, exc.reason, "", keep=False)
                    return
                if head is None or not await self._one(reader, writer, head):
                    return
                if first:
                    self.gate.authenticated(ticket)
                    first = False
        except TimeoutError:
            log.info("OTLP connection from %s timed out", peer)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.info("OTLP connection from %s ended: %s", peer, exc)
        except Exception as exc:  # never let a client take the hub down
            log.warning("OTLP connection from %s closed after an internal error: %r", peer, exc)
        finally:
            self.gate.release(ticket)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: RequestHead) -> bool:
        """Serve one request; return whether the connection stays open."""
        keep = head.keep_alive
        media = head.media
        # refusals decided by the headers alone come before the body is read, and close the
        # connection: its unread body would otherwise be taken for the next request
        if self.token and not self._authorized(head):
            await self._respond(writer, 401, "missing or wrong token (send 'Authorization: Bearer TOKEN')",
                                media, False)
            return False
        if head.path != TRACES_PATH:
            await self._respond(writer, 404, f"no such endpoint {head.path[:60]!r}; OTLP traces go to "
                                f"POST {TRACES_PATH}", media, False)
            return False
        if head.method != "POST":
            await self._respond(writer, 405, f"{head.method[:10]} not allowed; use POST", media, False)
            return False
        try:
            body = await asyncio.wait_for(read_body(reader, head, self.max_body), self.gate.limits.idle_timeout)
        except IngestError as exc:
            self.bad_requests += 1
            await self._respond(writer, exc.status, exc.reason, "", keep=False)
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

    def _authorized(self, head: RequestHead) -> bool:
        headers = head.headers
        given = headers.get("authorization", "")
        given = given[7:].strip() if given.lower().startswith("bearer ") else headers.get("x-edgetrace-token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, reason: str, media: str, keep: bool) -> None:
        body, ctype = status_body(reason, media)
        await write_response(writer, status, body, ctype, keep)
