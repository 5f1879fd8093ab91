"""Wire frames between agents and the hub, and between agents: length-prefixed MessagePack.

Every frame is a 4-byte big-endian length and a msgspec-encoded body. The length is checked
against a limit *before* the body is read, so a peer cannot make us allocate gigabytes by
lying about it. Decoding errors become `FrameError` with a clear reason; the caller closes
that one connection and keeps serving the others.
"""

from __future__ import annotations

import asyncio
import struct

import msgspec

from edgetrace._errors import FrameError
from edgetrace._records import Manifest

__all__ = [
    "DEFAULT_MAX_FRAME",
    "Ack",
    "Busy",
    "Hello",
    "HubMessage",
    "IncarnationRef",
    "Records",
    "Refused",
    "Seal",
    "Welcome",
    "decode_hub",
    "encode_hub",
    "read_frame",
    "write_frame",
]

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
_LEN = struct.Struct(">I")


class Hello(msgspec.Struct, tag="hello", kw_only=True):
    """An agent introduces itself: who it is, which session, its proof of membership, and the
    incarnations of its spool (id, first local seq, last local seq or 0 for the one being
    written), oldest first, so the hub can say how far it holds them (edgetrace._streams)."""

    token: str
    node: str
    session: str
    manifest: Manifest | None = None
    incarnations: list[tuple[str, int, int]] = []


class Welcome(msgspec.Struct, tag="welcome", kw_only=True):
    """The hub's answer: resume after `last_seq` (everything of this spool up to it is stored).

    `high` is the node's highest stored seq: an agent whose new incarnation has recorded
    nothing yet starts after it, so its numbers need no translation (a rebase).
    """

    last_seq: int
    high: int = 0


class Refused(msgspec.Struct, tag="refused", kw_only=True):
    """Final: a wrong token, a bad session id. The agent gives up and says why."""

    reason: str


class Busy(msgspec.Struct, tag="busy", kw_only=True):
    """Not now: the hub cannot store (a full disk) or has too many connections. Try again later."""

    reason: str
    retry_after: float = 1.0


class IncarnationRef(msgspec.Struct, array_like=True):
    """Which incarnation a batch's spans belong to: its id, first local seq, and whether it is a
    new process (a restart) or the same one renumbered to follow the hub (a rebase)."""

    id: str
    start: int
    restart: bool = True


class Records(msgspec.Struct, tag="records", kw_only=True):
    """A batch of one node's spans (already MessagePack-encoded) and the blobs they reference.

    With `zlib` the spans are zlib-compressed by the agent: ≈ 15× fewer bytes over a 4G link,
    and the hub stores the compressed bytes as they came instead of compressing them again.
    All spans of a batch belong to one `incarnation` (numbered locally from its start);
    `missing` are local seq ranges the agent lost to damage in its spool and quarantined,
    with why: the hub records them as lost, so the stream goes on past them.
    """

    spans: bytes
    blobs: list[tuple[str, bytes]] = []
    zlib: bool = False
    incarnation: IncarnationRef | None = None
    missing: list[tuple[int, int, str]] = []


class Ack(msgspec.Struct, tag="ack", kw_only=True):
    """Everything of `node` up to local `seq` is persisted (or accounted for); contiguous, a cursor.

    `offset` maps the batch's incarnation to stored seqs (stored = local + offset; not 0 after
    a lost or rolled-back spool); `rejected` lists local seqs the hub refused to store (a
    record that does not validate), with why: recorded as lost, never to be resent.
    """

    node: str
    seq: int
    offset: int = 0
    rejected: list[tuple[int, str]] = []


class Seal(msgspec.Struct, tag="seal", kw_only=True):
    """The recording is over: the hub marks the session complete."""

    session: str


HubMessage = Hello | Welcome | Refused | Busy | Records | Ack | Seal

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(HubMessage)


def encode_hub(msg: HubMessage) -> bytes:
    body = _encoder.encode(msg)
    return _LEN.pack(len(body)) + body


def decode_hub(body: bytes) -> HubMessage:
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise FrameError(f"malformed frame: {exc}") from None


async def read_frame(reader: asyncio.StreamReader, max_size: int = DEFAULT_MAX_FRAME) -> bytes | None:
    """The next frame's body, or None at a clean end of stream."""
    try:
        head = await reader.readexactly(_LEN.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("connection closed inside a frame header") from None
    (length,) = _LEN.unpack(head)
    if length > max_size:
        raise FrameError(f"frame of {length} bytes exceeds the {max_size}-byte limit")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise FrameError(f"connection closed inside a {length}-byte frame") from None


async def write_frame(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write an already length-prefixed frame (from `encode_hub` or `encode_message`)."""
    writer.write(data)
    await writer.drain()
