"""Encoders and decoders built once and reused (msgspec MessagePack).

Encoding is deterministic: map keys are sorted, so the same records give the same bytes on
every machine and every run (the replayer's byte-identical reports depend on it). Why
msgspec rather than msgpack-python: docs/decisions.md (1.9× the decode rate on this machine).
"""

from __future__ import annotations

from typing import Any

import msgspec

from edgetrace._records import Manifest, Span, SpanKind, Status

__all__ = ["SpanHead", "decode_manifest", "decode_span_heads", "decode_spans", "encode", "encode_manifest",
           "encode_spans"]



class SpanHead(msgspec.Struct, frozen=True, array_like=True, kw_only=True):
    """A `Span` checked field by field but with its attributes left as raw MessagePack.

    The hub must never store a record readers cannot decode, yet building every attribute
    dict only to write the same bytes back costs 2.6× the ingest rate (bench/bench_live.py).
    Same fields, same order as `Span` (a test keeps them in step).
    """

    node: str
    seq: int
    kind: SpanKind
    name: str
    trace: str = ""
    parent: str = ""
    cause: str = ""
    start: int = 0
    end: int = 0
    vc: dict[str, int] = {}
    attrs: msgspec.Raw = msgspec.Raw(b"\x80")
    status: Status = Status.OK
    error: str = ""
    blobs: dict[str, str] = {}

    @property
    def attrs_is_map(self) -> bool:
        raw = memoryview(self.attrs)
        return len(raw) > 0 and (0x80 <= raw[0] <= 0x8F or raw[0] in (0xDE, 0xDF))


_encoder = msgspec.msgpack.Encoder(order="deterministic")
_spans_decoder = msgspec.msgpack.Decoder(list[Span])
_heads_decoder = msgspec.msgpack.Decoder(list[SpanHead])
_manifest_decoder = msgspec.msgpack.Decoder(Manifest)
_any_decoder = msgspec.msgpack.Decoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def encode_spans(spans: list[Span] | tuple[Span, ...]) -> bytes:
    return _encoder.encode(spans)


def decode_spans(data: bytes) -> list[Span]:
    return _spans_decoder.decode(data)


def decode_span_heads(data: bytes) -> list[SpanHead]:
    return _heads_decoder.decode(data)


def encode_manifest(manifest: Manifest) -> bytes:
    return _encoder.encode(manifest)


def decode_manifest(data: bytes) -> Manifest:
    return _manifest_decoder.decode(data)


def decode_any(data: bytes) -> Any:
    return _any_decoder.decode(data)
