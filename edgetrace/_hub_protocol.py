"""The hub's side of exactly-once shipping, sans I/O: messages in, replies out.

    agent ─Hello─► HubConnection ─Welcome(last_seq) / Refused─► agent
          ─Records─►  (dedup, contiguity, validation, store, sync)  ─Ack(seq)─►
          ─Seal─►     (mark the session complete)                   ─Ack(seq)─►

`HubProtocol` is one per hub: the session store, the shared token, the frame limit, the
stats and the span hook. `HubProtocol.connect()` gives one `HubConnection` per agent
connection, whose `receive(message)` returns the reply. No sockets and no asyncio here: the
TCP server (edgetrace._hub) and the in-memory transport (edgetrace._transport) are thin
loops around it, and tests drive it directly.

A batch is cut to what extends the node's stream contiguously: duplicates from resends are
dropped, and at a gap only what was stored is acknowledged, so the agent resends from there.
Every record is checked field by field with the readers' own schema (attributes stay raw, so
an all-new batch is stored as the agent's bytes, never re-encoded), blobs must hash to their
names, and a compressed batch may not inflate past the frame limit. Blobs and records are
written — and flushed or fsynced per the store's policy — *before* `receive` returns the ack.

`receive` is synchronous and does all of a batch's work in one call, so a hub needs no locks
as long as its transports call it from one thread (one event loop), as they do.
"""

from __future__ import annotations

import hmac
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from edgetrace._codec import SpanHead, decode_span_heads, decode_spans
from edgetrace._errors import EdgeTraceError, FrameError
from edgetrace._records import Manifest, Span, blob_id, is_session_id
from edgetrace._session import FsyncPolicy, SessionWriter
from edgetrace._store import SessionStore
from edgetrace._text import printable
from edgetrace._wire import (
    DEFAULT_MAX_FRAME,
    Ack,
    Hello,
    HubMessage,
    Records,
    Refused,
    Seal,
    Welcome,
    decode_hub,
    encode_hub,
)

__all__ = ["DROPS_CONNECTION", "HubConnection", "HubProtocol", "HubStats", "SpanHook"]

log = logging.getLogger("edgetrace.hub")

SpanHook = Callable[[str, list[Span]], object]
"""Called with (session id, spans) after spans are stored, e.g. the OTLP forwarder."""

DROPS_CONNECTION: tuple[type[Exception], ...] = (EdgeTraceError, msgspec.MsgspecError, ValueError)
"""What a transport answers by `abort()`ing that one connection: bad frames, a corrupt session
on disk, a writer closed under it. The hub and its other connections carry on."""


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


class HubProtocol:
    """One hub's rules and state; hands out a `HubConnection` per agent connection."""

    def __init__(self, store: SessionStore, *, token: str = "", max_frame: int = DEFAULT_MAX_FRAME,
                 on_spans: SpanHook | None = None) -> None:
        self.store = store
        self.token = token
        self.max_frame = max_frame
        self.on_spans = on_spans  # failures are logged, never raised into ingest
        self.stats = HubStats()

    @property
    def fsync(self) -> FsyncPolicy:
        return self.store.fsync

    def connect(self, peer: object = None) -> HubConnection:
        """A new agent connection; `peer` names it in log lines."""
        self.stats.connections += 1
        return HubConnection(self, peer)

    def manifest(self, session: str) -> Manifest:
        """What the hub knows of a session so far (the OTLP forwarder names resources by it)."""
        writer = self.store.get(session)
        return writer.manifest if writer is not None else Manifest(session_id=session)

    def store_local(self, session: str, build: Callable[[SessionWriter], list[Span]]) -> list[Span]:
        """Append records the hub makes itself (spans taken in over OTLP) to a session.

        `build` numbers its spans from `writer.last_seq`; nothing else touches the session
        between that and the write (this call does not yield), so a foreign node's seqs are
        contiguous and survive restarts like an agent's. Synced per the fsync policy and
        forwarded like agent records.
        """
        if not is_session_id(session):
            raise FrameError(f"bad session id {session[:40]!r}")
        writer = self.writer(session)
        spans = build(writer)
        if spans:
            writer.append(spans)
            self.commit(writer)
            self.stats.records += len(spans)
            self.forward(session, lambda: spans)
        return spans

    # --- shared by connections -------------------------------------------------------------------

    def writer(self, session: str) -> SessionWriter:
        writer = self.store.open(session)
        self.stats.sessions.add(session)
        return writer

    def commit(self, writer: SessionWriter) -> None:
        """Make what was just written durable per the policy: this is what an ack promises."""
        if self.store.fsync is FsyncPolicy.FRAME:
            writer.sync()
        else:
            writer.flush()

    def forward(self, session: str, spans: Callable[[], list[Span]]) -> None:
        """Hand stored spans to the hook; `spans` is only decoded when there is a hook."""
        if self.on_spans is None:
            return
        try:
            self.on_spans(session, spans())
        except Exception as exc:  # an exporter must never break ingest
            log.warning("span forwarder failed: %s", exc)


class HubConnection:
    """One agent's conversation: hello first, then batches and at most a seal.

    `receive` raises `FrameError` on anything malformed or out of place; the transport then
    calls `abort` and drops the connection (the hub and its other connections carry on).
    After a refusal `closed` is true: send the reply, then hang up.
    """

    def __init__(self, protocol: HubProtocol, peer: object = None) -> None:
        self.protocol = protocol
        self.peer = peer
        self.hello: Hello | None = None
        self.closed = False
        self._session: SessionWriter | None = None

    def receive(self, msg: HubMessage) -> HubMessage:
        if self.closed:
            raise FrameError(f"{type(msg).__name__} on a connection the hub has ended")
        if self.hello is None or self._session is None:
            return self._greet(msg)
        if isinstance(msg, Records):
            return Ack(node=self.hello.node, seq=self._store(self.hello, self._session, msg))
        if isinstance(msg, Seal):
            self._session.seal()
            self._session.sync()
            return Ack(node=self.hello.node, seq=self._session.last_seq.get(self.hello.node, 0))
        raise FrameError(f"unexpected {type(msg).__name__} after hello")

    def receive_frame(self, body: bytes) -> bytes:
        """A frame body in, the reply as a length-prefixed frame out: what byte transports call."""
        return encode_hub(self.receive(decode_hub(body)))

    def abort(self, reason: BaseException) -> None:
        """The transport drops this connection over bad input: count it and say why."""
        self.closed = True
        self.protocol.stats.closed_bad += 1
        log.warning("closing connection from %s: %s", self.peer, reason)

    def _greet(self, msg: HubMessage) -> HubMessage:
        if not isinstance(msg, Hello):
            raise FrameError(f"expected hello first, got {type(msg).__name__}")
        if not hmac.compare_digest(msg.token.encode(), self.protocol.token.encode()):
            self.closed = True
            self.protocol.stats.refused += 1
            log.warning("refused %s: missing or wrong token", self.peer)
            return Refused(reason="missing or wrong token")
        if not is_session_id(msg.session) or not msg.node:
            raise FrameError(f"bad session id {msg.session[:40]!r} or empty node")
        session = self.protocol.writer(msg.session)
        if msg.manifest is not None:
            conflicts = session.manifest.conflicts(msg.manifest)
            if conflicts:  # identity is fixed once written (Manifest.merged): say so, store nothing of it
                log.warning("session %s: a hello from %s (node %s) gives a different %s; the session keeps "
                            "what it was given first", msg.session, self.peer, printable(msg.node, limit=60),
                            ", ".join(conflicts))
            if session.manifest.merged(msg.manifest) != session.manifest:
                session.write_manifest(msg.manifest)
        self.hello, self._session = msg, session
        return Welcome(last_seq=session.last_seq.get(msg.node, 0))

    def _store(self, hello: Hello, session: SessionWriter, msg: Records) -> int:
        """Store what extends the node's stream; return the node's last stored seq (the ack)."""
        stats = self.protocol.stats
        payload = self._unpack(hello, msg)
        spans = self._heads(hello, payload)
        last = session.last_seq.get(hello.node, 0)
        fresh: list[SpanHead] = []
        seqs = [h.seq for h in spans]
        if seqs == list(range(last + 1, last + 1 + len(seqs))) and all(h.node == hello.node for h in spans):
            fresh, last, spans_left = spans, last + len(seqs), []  # the usual batch: all new, in order
        else:
            spans_left = spans
        for span in spans_left:
            if span.node != hello.node:
                raise FrameError(f"node {hello.node!r} sent a span of {span.node!r}")
            if span.seq <= last:
                stats.duplicates += 1
            elif span.seq == last + 1:
                fresh.append(span)
                last = span.seq
            else:
                stats.gaps += 1
                break  # never store out of order: ack what we have, the agent resends
        if fresh:
            partial = None if len(fresh) == len(spans) else self._spans(hello, payload, fresh)
            for sha, data in msg.blobs:
                if blob_id(data) != sha:
                    raise FrameError(f"blob {sha[:12]}… from {hello.node!r} does not match its content")
                session.put_blob(data, sha)
            if partial is None:
                session.append_encoded(payload, fresh, zlib_packed=msg.spans if msg.zlib else None,
                                       last=(hello.node, last))
            else:
                session.append(partial)
            self.protocol.commit(session)
            stats.records += len(fresh)
            stats.bytes += len(msg.spans)
            if self.protocol.on_spans is not None:
                self.protocol.forward(hello.session, lambda: partial or self._spans(hello, payload, fresh))
        return session.last_seq.get(hello.node, 0)

    @staticmethod
    def _spans(hello: Hello, payload: bytes, fresh: list[SpanHead]) -> list[Span]:
        """The fresh records fully decoded (for a partial batch, or for the span hook)."""
        wanted = {h.seq for h in fresh}
        try:
            return [s for s in decode_spans(payload) if s.seq in wanted]
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise FrameError(f"records from {hello.node!r} do not decode: {exc}") from None

    @staticmethod
    def _heads(hello: Hello, payload: bytes) -> list[SpanHead]:
        """Every field checked, attributes kept raw (so an all-new batch is stored as sent)."""
        try:
            spans = decode_span_heads(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise FrameError(f"records from {hello.node!r} do not decode: {exc}") from None
        bad = next((h for h in spans if not h.attrs_is_map), None)
        if bad is not None:
            raise FrameError(f"span {bad.node}:{bad.seq} from {hello.node!r}: attributes are not a map")
        return spans

    def _unpack(self, hello: Hello, msg: Records) -> bytes:
        """The batch's encoded spans; a compressed batch may not inflate past the frame limit."""
        if not msg.zlib:
            return msg.spans
        limit = self.protocol.max_frame
        inflater = zlib.decompressobj()
        try:
            payload = inflater.decompress(msg.spans, limit)
        except zlib.error as exc:
            raise FrameError(f"records from {hello.node!r} do not decompress: {exc}") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise FrameError(f"records from {hello.node!r} inflate past the {limit}-byte frame limit "
                             "or are cut short")
        return payload
