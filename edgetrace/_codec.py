"""Encoders and decoders built once and reused (msgspec MessagePack).

Encoding is deterministic: map keys are sorted, so the same records give the same bytes on
every machine and every run (the replayer's byte-identical reports depend on it). Why
msgspec rather than msgpack-python: docs/decisions.md (1.9× the decode rate on this machine).
"""

from __future__ import annotations

from typing import Any

import msgspec

from edgetrace._records import Manifest, Span

__all__ = ["decode_manifest", "decode_spans", "encode", "encode_manifest", "encode_spans"]

_encoder = msgspec.msgpack.Encoder(order="deterministic")
_spans_decoder = msgspec.msgpack.Decoder(list[Span])
_manifest_decoder = msgspec.msgpack.Decoder(Manifest)
_any_decoder = msgspec.msgpack.Decoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def encode_spans(spans: list[Span] | tuple[Span, ...]) -> bytes:
    return _encoder.encode(spans)


def decode_spans(data: bytes) -> list[Span]:
    return _spans_decoder.decode(data)


def encode_manifest(manifest: Manifest) -> bytes:
    return _encoder.encode(manifest)


def decode_manifest(data: bytes) -> Manifest:
    return _manifest_decoder.decode(data)


def decode_any(data: bytes) -> Any:
    return _any_decoder.decode(data)
