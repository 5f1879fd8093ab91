"""The agent's side of exactly-once shipping, sans I/O: what to send next, and what a reply means.

    hello() ─► Welcome(last_seq) ─► next_batch() ─► Ack(seq) ─► next_batch() ─► …
          └──► Refused: give up (a wrong token does not fix itself)

The hub acknowledges a node's stream as one contiguous cursor, so the cursor here is one
number: the last seq the hub has stored. Each welcome or ack moves it and is written to the
spool's ack cursor, so a restarted agent does not resend what the hub confirmed; each new
connection starts again from the hub's welcome, which may be behind the spool's cursor (the
hub lost unsynced data) and is then what counts. The `Shipper` (edgetrace.agents._shipper)
drives this over a transport; tests drive it by hand. Only the local spool is read here.
"""

from __future__ import annotations

import enum
import zlib

from edgetrace._codec import encode_spans
from edgetrace._errors import FrameError
from edgetrace._records import Manifest
from edgetrace._wire import (
    DEFAULT_MAX_FRAME,
    Ack,
    Hello,
    HubMessage,
    Records,
    Refused,
    Seal,
    Welcome,
)
from edgetrace.agents._spool import Spool

__all__ = ["CursorState", "ShipperCursor"]


class CursorState(enum.StrEnum):
    IDLE = "idle"  # no connection: start one with hello()
    GREETING = "greeting"  # hello sent, waiting for welcome or refused
    READY = "ready"  # may send a batch (or a seal)
    AWAITING_ACK = "awaiting-ack"
    REFUSED = "refused"  # final


class ShipperCursor:
    """One node's shipping state against one hub session."""

    def __init__(self, spool: Spool, *, token: str, node: str, session: str, manifest: Manifest | None = None,
                 batch: int = 500, max_bytes: int = DEFAULT_MAX_FRAME // 2) -> None:
        self.spool = spool
        self.token = token
        self.node = node
        self.session = session
        self.manifest = manifest
        self.batch = batch
        self.max_bytes = max_bytes
        self.state = CursorState.IDLE
        self.hub_seq = 0  # the last seq the hub said it stored, on this connection
        self.refused = ""

    def hello(self) -> Hello:
        """The first message on a new connection."""
        self._expect(CursorState.IDLE, "say hello")
        self.state = CursorState.GREETING
        return Hello(token=self.token, node=self.node, session=self.session, manifest=self.manifest)

    def next_batch(self) -> Records | None:
        """The spans the hub does not have yet (size-bounded, zlib level 1), or None if none are spooled."""
        self._expect(CursorState.READY, "send records")
        spans, blobs = self.spool.pending(self.hub_seq, self.batch, max_bytes=self.max_bytes)
        if not spans:
            return None
        self.state = CursorState.AWAITING_ACK
        return Records(spans=zlib.compress(encode_spans(spans), 1), blobs=blobs, zlib=True)

    def seal(self) -> Seal:
        """Tell the hub the recording is over; it answers with an ack."""
        self._expect(CursorState.READY, "seal")
        self.state = CursorState.AWAITING_ACK
        return Seal(session=self.session)

    def receive(self, reply: HubMessage) -> None:
        """Take the hub's reply to what was sent last; FrameError if it makes no sense here."""
        if self.state is CursorState.GREETING:
            if isinstance(reply, Refused):
                self.refused, self.state = reply.reason, CursorState.REFUSED
                return
            if not isinstance(reply, Welcome):
                raise FrameError(f"expected welcome, got {type(reply).__name__}")
            self._advance(reply.last_seq)
        elif self.state is CursorState.AWAITING_ACK:
            if not isinstance(reply, Ack):
                raise FrameError(f"expected ack, got {type(reply).__name__}")
            self._advance(reply.seq)
        else:
            raise FrameError(f"unexpected {type(reply).__name__} from the hub while {self.state}")

    def lost(self) -> None:
        """The connection ended (for whatever reason): the next one starts with hello()."""
        if self.state is not CursorState.REFUSED:
            self.state = CursorState.IDLE

    def _advance(self, seq: int) -> None:
        self.spool.ack(seq)  # persisted, and only ever forward
        self.hub_seq = seq
        self.state = CursorState.READY

    def _expect(self, state: CursorState, what: str) -> None:
        if self.state is not state:  # a bug in the driving loop, not bad input from the hub
            raise RuntimeError(f"shipper cursor for {self.node}: cannot {what} while {self.state}")
