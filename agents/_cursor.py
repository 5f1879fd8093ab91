"""The agent's side of exactly-once shipping, sans I/O: what to send next, and what a reply means.

    hello() ─► Welcome(last_seq, high) ─► next_batch() ─► Ack(seq, offset, rejected) ─► next_batch() ─► …
          ├──► Refused: give up (a wrong token does not fix itself)
          └──► Busy: the hub cannot store now (a full disk): try again after `retry_after`

The hub acknowledges a node's stream as one contiguous cursor in this spool's own numbering,
so the cursor here is one number: the last local seq the hub holds. Each welcome or ack moves
it and is written to the spool's ack cursor, so a restarted agent does not resend what the
hub confirmed; each new connection starts again from the hub's welcome, which may be behind
the spool's cursor (the hub lost unsynced data) and is then what counts.

Incarnations (edgetrace.agents._spool) make a lost or rolled-back spool safe: the hello lists
them, each batch names its own, and the hub stores a reused number as a new span. When the
hub's stream is already past this spool's numbers — a welcome whose `high` is beyond a new,
still-empty incarnation, or an ack with an `offset` for the incarnation being written — the
cursor *rebases*: a new incarnation after what the hub holds, and `on_rebase(seq)` tells the
recorder to continue from there, so from then on local and stored numbers (and the clocks
that carry them) agree. Records the hub refused are quarantined in the spool and counted.
The `Shipper` (edgetrace.agents._shipper) drives this over a transport; tests drive it by hand.
"""

from __future__ import annotations

import enum
import logging
import zlib
from collections.abc import Callable

from edgetrace._codec import encode_spans
from edgetrace._errors import FrameError
from edgetrace._records import Manifest
from edgetrace._text import printable
from edgetrace._wire import (
    DEFAULT_MAX_FRAME,
    Ack,
    Busy,
    Hello,
    HubMessage,
    IncarnationRef,
    Records,
    Refused,
    Seal,
    Welcome,
)
from edgetrace.agents._spool import Pending, Spool

__all__ = ["CursorState", "ShipperCursor"]

log = logging.getLogger("edgetrace.shipper")

_HELLO_INCARNATIONS = 256  # older ones were confirmed long ago; a hello stays small


class CursorState(enum.StrEnum):
    IDLE = "idle"  # no connection: start one with hello()
    GREETING = "greeting"  # hello sent, waiting for welcome or refused
    READY = "ready"  # may send a batch (or a seal)
    AWAITING_ACK = "awaiting-ack"
    REFUSED = "refused"  # final


class ShipperCursor:
    """One node's shipping state against one hub session."""

    def __init__(self, spool: Spool, *, token: str, node: str, session: str, manifest: Manifest | None = None,
                 batch: int = 500, max_bytes: int = DEFAULT_MAX_FRAME // 2,
                 on_rebase: Callable[[int], None] | None = None) -> None:
        self.spool = spool
        self.token = token
        self.node = node
        self.session = session
        self.manifest = manifest
        self.batch = batch
        self.max_bytes = max_bytes
        self.on_rebase = on_rebase
        self.state = CursorState.IDLE
        self.hub_seq = 0  # the last local seq the hub said it holds, on this connection
        self.refused = ""
        self.busy = ""  # why the hub last said it cannot store now ("" once it stores again)
        self.retry_after = 0.0
        self.rebases = 0
        self._sent: Pending | None = None

    def hello(self) -> Hello:
        """The first message on a new connection."""
        self._expect(CursorState.IDLE, "say hello")
        self.state = CursorState.GREETING
        incarnations = self.spool.shipping_incarnations()[-_HELLO_INCARNATIONS:]
        return Hello(token=self.token, node=self.node, session=self.session, manifest=self.manifest,
                     incarnations=incarnations)

    def next_batch(self) -> Records | None:
        """The spans the hub does not have yet (size-bounded, zlib level 1), or None if none are spooled."""
        self._expect(CursorState.READY, "send records")
        pending = self.spool.pending(self.hub_seq, self.batch, max_bytes=self.max_bytes)
        if not pending:
            return None
        self.state = CursorState.AWAITING_ACK
        self._sent = pending
        inc = pending.incarnation
        return Records(spans=zlib.compress(encode_spans(pending.spans), 1), blobs=pending.blobs, zlib=True,
                       incarnation=IncarnationRef(inc.id, inc.start, inc.restart), missing=pending.missing)

    def seal(self) -> Seal:
        """Tell the hub the recording is over; it answers with an ack."""
        self._expect(CursorState.READY, "seal")
        self.state = CursorState.AWAITING_ACK
        self._sent = None
        return Seal(session=self.session)

    def receive(self, reply: HubMessage) -> None:
        """Take the hub's reply to what was sent last; FrameError if it makes no sense here."""
        if isinstance(reply, Busy) and self.state in (CursorState.GREETING, CursorState.AWAITING_ACK):
            self.busy, self.retry_after = reply.reason, max(0.05, min(reply.retry_after, 60.0))
            self.state = CursorState.IDLE  # the hub hangs up; try again later
            return
        if self.state is CursorState.GREETING:
            if isinstance(reply, Refused):
                self.refused, self.state = reply.reason, CursorState.REFUSED
                return
            if not isinstance(reply, Welcome):
                raise FrameError(f"expected welcome, got {type(reply).__name__}")
            self._advance(reply.last_seq)
            current = self.spool.incarnation
            if (reply.high > self.spool.last_seq and not current.last and self.hub_seq >= self.spool.last_seq):
                self._rebase(reply.high, f"the hub holds {self.node}'s stream up to seq {reply.high}")
        elif self.state is CursorState.AWAITING_ACK:
            if not isinstance(reply, Ack):
                raise FrameError(f"expected ack, got {type(reply).__name__}")
            self._take_ack(reply)
        else:
            raise FrameError(f"unexpected {type(reply).__name__} from the hub while {self.state}")
        self.busy = ""

    def _take_ack(self, reply: Ack) -> None:
        sent, self._sent = self._sent, None
        for seq, reason in reply.rejected:
            self.spool.reject(seq, reason)
            log.error("shipper %s: the hub refused span %s:%d and will not store it: %s", self.node,
                      printable(self.node, limit=60), seq, printable(reason, limit=300))
        self._advance(reply.seq)
        if sent is not None and sent.missing:
            lost = sum(b - a + 1 for a, b, _ in sent.missing)
            log.error("shipper %s: %d span(s) lost to spool damage are recorded as lost at the hub", self.node, lost)
        if (reply.offset > 0 and sent is not None and sent.incarnation.id == self.spool.incarnation.id):
            self._rebase(self.spool.last_seq + reply.offset,
                         f"the hub stores this incarnation {reply.offset} seqs on (its spool was lost or "
                         "rolled back)")

    def _rebase(self, after: int, why: str) -> None:
        if self.on_rebase is None:  # nobody to tell the recorder: the hub goes on translating
            return
        inc = self.spool.rebase(after)
        self.on_rebase(after)
        self.rebases += 1
        log.warning("shipper %s: %s; numbering on from seq %d (incarnation %s)", self.node, why, inc.start, inc.id)

    def must_wait(self) -> bool:
        """True after a Busy: end this connection, ask again after `retry_after`."""
        return bool(self.busy)

    def lost(self) -> None:
        """The connection ended (for whatever reason): the next one starts with hello()."""
        if self.state is not CursorState.REFUSED:
            self.state = CursorState.IDLE
        self._sent = None

    def _advance(self, seq: int) -> None:
        self.spool.ack(seq)  # persisted, only ever forward, never past what the spool holds
        self.hub_seq = seq
        self.state = CursorState.READY

    def _expect(self, state: CursorState, what: str) -> None:
        if self.state is not state:  # a bug in the driving loop, not bad input from the hub
            raise RuntimeError(f"shipper cursor for {self.node}: cannot {what} while {self.state}")
