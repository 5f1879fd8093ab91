"""The hub: collects spans from many agents into sessions, each acknowledged record exactly once.

Per connection: the agent says hello with the shared token (compared in constant time), the
hub answers with the last seq it stored for that node, then takes batches. A batch is cut to
what extends the node's stream contiguously (duplicates from resends are dropped; a gap is
refused by acking only what is stored, so the agent resends from there), its blobs and
records are written — and flushed or fsynced per policy — *before* the ack goes out. A
connection that sends garbage, an oversized frame or a bad token is closed with a logged
reason; the hub and its other connections carry on.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from edgetrace._codec import decode_span_heads, decode_spans
from edgetrace._errors import AuthError, EdgeTraceError, FrameError
from edgetrace._records import Manifest, Span, blob_id, is_session_id
from edgetrace._session import SESSION_SUFFIX, FsyncPolicy, SessionWriter
from edgetrace._wire import (
    DEFAULT_MAX_FRAME,
    Ack,
    Hello,
    Records,
    Refused,
    Seal,
    Welcome,
    decode_hub,
    encode_hub,
    read_frame,
    write_frame,
)

__all__ = ["Hub", "HubStats"]

log = logging.getLogger("edgetrace.hub")


@dataclass
class HubStats:
    records: int = 0
    duplicates: int = 0
    gaps: int = 0
    bytes: int = 0
    connections: int = 0
    refused: int = 0
    closed_bad: int = 0
    sessions: set[str] = field(default_factory=set)


class Hub:
    """An asyncio TCP server writing one session file per session id under `data_dir`."""

    def __init__(self, data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 7411, token: str = "",
                 max_frame: int = DEFAULT_MAX_FRAME, fsync: FsyncPolicy | str = FsyncPolicy.FRAME,
                 on_spans: Any = None) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.token = token
        self.max_frame = max_frame
        self.fsync = FsyncPolicy(fsync)
        self.stats = HubStats()
        self.on_spans = on_spans  # e.g. the OTLP forwarder; failures are logged, never raised
        self._writers: dict[str, SessionWriter] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=2**16)
        sock = self._server.sockets[0].getsockname()
        self.port = sock[1]
        return sock[0], sock[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def session_path(self, session: str) -> Path:
        return self.data_dir / f"{session}{SESSION_SUFFIX}"

    def _writer(self, session: str) -> SessionWriter:
        writer = self._writers.get(session)
        if writer is None:
            writer = SessionWriter(self.session_path(session), fsync=self.fsync)
            if writer.torn_bytes_cut:
                log.warning("session %s: cut a torn tail of %d bytes left by a crash", session, writer.torn_bytes_cut)
            self._writers[session] = writer
            self._locks[session] = asyncio.Lock()
            self.stats.sessions.add(session)
        return writer

    # --- one connection --------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.stats.connections += 1
        try:
            await self._converse(reader, writer)
        except AuthError as exc:
            self.stats.refused += 1
            log.warning("refused %s: %s", peer, exc)
            try:
                await write_frame(writer, encode_hub(Refused(reason=str(exc))))
            except (OSError, ConnectionError):
                pass
        except (FrameError, EdgeTraceError, msgspec.MsgspecError, ValueError) as exc:
            self.stats.closed_bad += 1
            log.warning("closing connection from %s: %s", peer, exc)
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("connection from %s ended: %s", peer, exc)
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_frame(reader, self.max_frame)
        if body is None:
            return
        hello = decode_hub(body)
        if not isinstance(hello, Hello):
            raise FrameError(f"expected hello first, got {type(hello).__name__}")
        if not hmac.compare_digest(hello.token.encode(), self.token.encode()):
            raise AuthError("missing or wrong token")
        if not is_session_id(hello.session) or not hello.node:
            raise FrameError(f"bad session id {hello.session[:40]!r} or empty node")
        session = self._writer(hello.session)
        lock = self._locks[hello.session]
        async with lock:
            if hello.manifest is not None:
                self._merge_manifest(session, hello.manifest)
            last = session.last_seq.get(hello.node, 0)
        await write_frame(writer, encode_hub(Welcome(last_seq=last)))
        while True:
            body = await read_frame(reader, self.max_frame)
            if body is None:
                return
            msg = decode_hub(body)
            if isinstance(msg, Records):
                seq = await self._store(hello, session, lock, msg)
                await write_frame(writer, encode_hub(Ack(node=hello.node, seq=seq)))
            elif isinstance(msg, Seal):
                async with lock:
                    session.seal()
                    session.sync()
                await write_frame(writer, encode_hub(Ack(node=hello.node, seq=session.last_seq.get(hello.node, 0))))
            else:
                raise FrameError(f"unexpected {type(msg).__name__} after hello")

    def _merge_manifest(self, session: SessionWriter, manifest: Manifest) -> None:
        merged = session.manifest.merged(manifest)
        if merged != session.manifest:
            session.write_manifest(manifest)

    async def _store(self, hello: Hello, session: SessionWriter, lock: asyncio.Lock, msg: Records) -> int:
        # Every field is checked, but attributes stay raw: when the whole batch is new (the
        # usual case) the agent's bytes are stored as they came, without a re-encode.
        payload = self._unpack(hello, msg)
        spans = decode_span_heads(payload)
        bad = next((h for h in spans if not h.attrs_is_map), None)
        if bad is not None:
            raise FrameError(f"span {bad.node}:{bad.seq} from {hello.node!r}: attributes are not a map")
        async with lock:
            last = session.last_seq.get(hello.node, 0)
            fresh: list[Any] = []
            seqs = [h.seq for h in spans]
            if seqs == list(range(last + 1, last + 1 + len(seqs))) and all(h.node == hello.node for h in spans):
                fresh, last, spans_left = spans, last + len(seqs), []  # the usual batch: all new, in order
            else:
                spans_left = spans
            for span in spans_left:
                if span.node != hello.node:
                    raise FrameError(f"node {hello.node!r} sent a span of {span.node!r}")
                if span.seq <= last:
                    self.stats.duplicates += 1
                elif span.seq == last + 1:
                    fresh.append(span)
                    last = span.seq
                else:
                    self.stats.gaps += 1
                    break  # never store out of order: ack what we have, the agent resends
            if fresh:
                for sha, data in msg.blobs:
                    if blob_id(data) != sha:
                        raise FrameError(f"blob {sha[:12]}… from {hello.node!r} does not match its content")
                    session.put_blob(data, sha)
                if len(fresh) == len(spans):
                    session.append_encoded(payload, fresh, zlib_packed=msg.spans if msg.zlib else None,
                                           last=(hello.node, last))
                else:
                    wanted = {h.seq for h in fresh}
                    session.append([s for s in decode_spans(payload) if s.seq in wanted])
                if self.fsync is FsyncPolicy.FRAME:
                    session.sync()
                else:
                    session.flush()
                self.stats.records += len(fresh)
                self.stats.bytes += len(msg.spans)
            stored = session.last_seq.get(hello.node, 0)
        if fresh and self.on_spans is not None:
            try:
                wanted = {h.seq for h in fresh}
                self.on_spans(hello.session, [s for s in decode_spans(payload) if s.seq in wanted])
            except Exception as exc:  # an exporter must never break ingest
                log.warning("span forwarder failed: %s", exc)
        return stored

    def _unpack(self, hello: Hello, msg: Records) -> bytes:
        """The batch's encoded spans; a compressed batch may not inflate past the frame limit."""
        if not msg.zlib:
            return msg.spans
        inflater = zlib.decompressobj()
        try:
            payload = inflater.decompress(msg.spans, self.max_frame)
        except zlib.error as exc:
            raise FrameError(f"records from {hello.node!r} do not decompress: {exc}") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise FrameError(f"records from {hello.node!r} inflate past the {self.max_frame}-byte frame limit "
                             "or are cut short")
        return payload

    def manifest(self, session: str) -> Manifest:
        """What the hub knows of a session so far (the OTLP forwarder names resources by it)."""
        writer = self._writers.get(session)
        return writer.manifest if writer is not None else Manifest(session_id=session)

    async def store_local(self, session: str, build: Callable[[SessionWriter], list[Span]]) -> list[Span]:
        """Append records the hub makes itself (spans taken in over OTLP) to a session.

        `build` runs under the session lock and numbers its spans from `writer.last_seq`, so
        a foreign node's seqs are contiguous and survive restarts like an agent's; the write
        is synced per the fsync policy and forwarded like agent records.
        """
        if not is_session_id(session):
            raise FrameError(f"bad session id {session[:40]!r}")
        writer = self._writer(session)
        async with self._locks[session]:
            spans = build(writer)
            if spans:
                writer.append(spans)
                if self.fsync is FsyncPolicy.FRAME:
                    writer.sync()
                else:
                    writer.flush()
                self.stats.records += len(spans)
        if spans and self.on_spans is not None:
            try:
                self.on_spans(session, spans)
            except Exception as exc:  # an exporter must never break ingest
                log.warning("span forwarder failed: %s", exc)
        return spans

    def seal_all(self) -> None:
        for writer in self._writers.values():
            writer.seal()
            writer.sync()

