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
    "Hello",
    "HubMessage",
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
    """An agent introduces itself: who it is, which session, and its proof of membership."""

    token: str
    node: str
    session: str
    manifest: Manifest | None = None


class Welcome(msgspec.Struct, tag="welcome", kw_only=True):
    """The hub's answer: resume after `last_seq` (everything up to it is stored)."""

    last_seq: int


class Refused(msgspec.Struct, tag="refused", kw_only=True):
    reason: str


class Records(msgspec.Struct, tag="records", kw_only=True):
    """A batch of one node's spans (already MessagePack-encoded) and the blobs they reference.

    With `zlib` the spans are zlib-compressed by the agent: ≈ 15× fewer bytes over a 4G link,
    and the hub stores the compressed bytes as they came instead of compressing them again.
    """

    spans: bytes
    blobs: list[tuple[str, bytes]] = []
    zlib: bool = False


class Ack(msgspec.Struct, tag="ack", kw_only=True):
    """Everything of `node` up to `seq` is persisted; contiguous, so seq is a cursor."""

    node: str
    seq: int


class Seal(msgspec.Struct, tag="seal", kw_only=True):
    """The recording is over: the hub marks the session complete."""

    session: str


HubMessage = Hello | Welcome | Refused | Records | Ack | Seal

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
