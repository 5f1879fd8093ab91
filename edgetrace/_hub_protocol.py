"""The hub's side of exactly-once shipping, sans I/O: messages in, replies out.

    agent ─Hello─► HubConnection ─Welcome(last_seq, high) / Refused / Busy─► agent
          ─Records─►  (validate, place in the node's stream, store, sync) ─Ack(seq, offset, rejected) / Busy─►
          ─Seal─►     (mark the session complete)                          ─Ack(seq)─►

`HubProtocol` is one per hub: the session store, the shared token, the frame limit, the
stats and the span hook. `HubProtocol.connect()` gives one `HubConnection` per agent
connection, whose `receive(message)` returns the reply. No sockets and no asyncio here: the
TCP server (edgetrace._hub) and the in-memory transport (edgetrace._transport) are thin
loops around it, and tests drive it directly.

What a batch means — validation with the readers' decoder, dedup by (incarnation, local
seq), gaps, lost and rolled-back spools, storing before the ack — is edgetrace._hub_ingest.
A disk that refuses data is answered with `Busy` (nothing unstored is acknowledged, the agent
retries later); a wrong token with `Refused` (final).

`receive` is synchronous and does all of a batch's work in one call, so a hub needs no locks
as long as its transports call it from one thread (one event loop), as they do.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from edgetrace._errors import CorruptSessionError, EdgeTraceError, FrameError, StorageError
from edgetrace._hub_ingest import store_batch
from edgetrace._records import Manifest, Span, is_session_id
from edgetrace._session import FsyncPolicy, SessionWriter
from edgetrace._store import SessionStore
from edgetrace._streams import confirmed
from edgetrace._text import printable
from edgetrace._wire import (
    DEFAULT_MAX_FRAME,
    Ack,
    Busy,
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
    rejected: int = 0  # records that did not validate: not stored, recorded as lost
    lost: int = 0  # records agents reported lost to damage in their spools
    rollbacks: int = 0  # incarnations that reused seqs the session held (a lost or rolled-back spool)
    busy: int = 0  # batches answered Busy (the disk refused them)
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
        forwarded like agent records; a full disk raises StorageError with nothing stored.
        """
        if not is_session_id(session):
            raise FrameError(f"bad session id {session[:40]!r}")
        writer = self.writer(session)
        spans = build(writer)
        if spans:
            with writer.batch():
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
        """Make what was just written durable per the policy: this is what an ack promises.

        Writes reach the OS as they are made (nothing is buffered here), so `never` and
        `close` survive a killed hub; `frame` also survives a power cut.
        """
        if self.store.fsync is FsyncPolicy.FRAME:
            writer.sync()

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
    After a refusal (or a Busy) `closed` is true: send the reply, then hang up.
    """

    def __init__(self, protocol: HubProtocol, peer: object = None) -> None:
        self.protocol = protocol
        self.peer = peer
        self.hello: Hello | None = None
        self.closed = False
        self.authenticated = False
        self._session: SessionWriter | None = None
        self._incarnations: list[tuple[str, int, int]] = []

    def receive(self, msg: HubMessage) -> HubMessage:
        if self.closed:
            raise FrameError(f"{type(msg).__name__} on a connection the hub has ended")
        if self.hello is None or self._session is None:
            return self._greet(msg)
        session = self._session
        if session.closed:  # the store closed it (too many open sessions): take it up again
            session = self._session = self.protocol.writer(self.hello.session)
        if isinstance(msg, Records):
            reply = store_batch(self.protocol, self.hello, self._incarnations, session, msg)
        elif isinstance(msg, Seal):
            try:
                with session.batch():
                    session.seal()
                    session.sync()
            except StorageError as exc:
                reply = Busy(reason=str(exc))
            else:
                reply = Ack(node=self.hello.node,
                            seq=confirmed(session.streams.get(self.hello.node), self._incarnations))
        else:
            raise FrameError(f"unexpected {type(msg).__name__} after hello")
        if isinstance(reply, Busy):
            self.closed = True
        return reply

    def receive_frame(self, body: bytes) -> bytes:
        """A frame body in, the reply as a length-prefixed frame out: what byte transports call."""
        return encode_hub(self.receive(decode_hub(body)))

    def abort(self, reason: BaseException) -> None:
        """The transport drops this connection over bad input: count it and say why."""
        self.closed = True
        self.protocol.stats.closed_bad += 1
        log.warning("closing connection from %s: %s", self.peer, printable(reason, limit=300))

    def _greet(self, msg: HubMessage) -> HubMessage:
        if not isinstance(msg, Hello):
            raise FrameError(f"expected hello first, got {type(msg).__name__}")
        if not hmac.compare_digest(msg.token.encode(), self.protocol.token.encode()):
            self.closed = True
            self.protocol.stats.refused += 1
            log.warning("refused %s: missing or wrong token", self.peer)
            return Refused(reason="missing or wrong token")
        self.authenticated = True
        if not is_session_id(msg.session) or not msg.node:
            raise FrameError(f"bad session id {msg.session[:40]!r} or empty node")
        try:
            session = self.protocol.writer(msg.session)
            if msg.manifest is not None:
                self._take_manifest(msg, session)
        except StorageError as exc:
            self.closed = True
            self.protocol.stats.busy += 1
            log.error("%s", exc)
            return Busy(reason=str(exc))
        except CorruptSessionError as exc:  # a session this hub cannot continue (a newer format)
            self.closed = True
            log.error("refused %s: %s", self.peer, exc)
            return Refused(reason=str(exc))
        self.hello, self._session = msg, session
        self._incarnations = [(str(i), int(first), int(last)) for i, first, last in msg.incarnations[:4096]]
        stream = session.streams.get(msg.node)
        return Welcome(last_seq=confirmed(stream, self._incarnations), high=stream.high if stream else 0)

    def _take_manifest(self, msg: Hello, session: SessionWriter) -> None:
        assert msg.manifest is not None
        conflicts = session.manifest.conflicts(msg.manifest)
        if conflicts:  # identity is fixed once written (Manifest.merged): say so, store nothing of it
            log.warning("session %s: a hello from %s (node %s) gives a different %s; the session keeps "
                        "what it was given first", msg.session, self.peer, printable(msg.node, limit=60),
                        ", ".join(conflicts))
        if session.manifest.merged(msg.manifest) != session.manifest:
            with session.batch():
                session.write_manifest(msg.manifest)
                self.protocol.commit(session)
