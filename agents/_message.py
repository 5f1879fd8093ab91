"""Messages between nodes. The same struct travels over TCP live and through the simulator."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

__all__ = ["Message", "MessageKind"]


class MessageKind(enum.StrEnum):
    INPUT = "input"
    SEND = "send"
    CALL = "call"
    REPLY = "reply"
    STATE_GET = "state.get"
    STATE_PUT = "state.put"
    CONTROL = "control"  # from the driver of a recording: set the epoch, stop


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message; `vc` is the sender's full clock, `cause` the span that sent it."""

    kind: MessageKind
    src: str
    dst: str
    topic: str
    trace: str = ""
    payload: Any = None
    vc: dict[str, int] = {}
    cause: str = ""
    call_id: int = 0
    error: str = ""
