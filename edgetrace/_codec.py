"""Encoders and decoders built once and reused (msgspec MessagePack).

Encoding is deterministic: map keys are sorted, so the same records give the same bytes on
every machine and every run (the replayer's byte-identical reports depend on it). Why
msgspec rather than msgpack-python: docs/decisions.md (1.9× the decode rate on this machine).

Decoding is strict and there is one decoder per kind of payload: the hub validates every
batch with `decode_spans` before it stores or acknowledges it, and every reader (show,
replay, export, the explorer's full reads, the agent's own spool) reads with the same
function, so a record the hub accepted is a record every reader can read. The rules are the
types of edgetrace._records (seqs from 1, clock entries ≥ 0, bounded times, attributes that
are JSON values nested at most ATTR_DEPTH deep).
"""

from __future__ import annotations

from typing import Any

import msgspec

from edgetrace._records import Manifest, Marker, Span

__all__ = ["SpanId", "decode_any", "decode_manifest", "decode_marker", "decode_span_ids", "decode_spans", "encode",
           "encode_manifest", "encode_marker", "encode_spans"]


class SpanId(msgspec.Struct, frozen=True, array_like=True):
    """The first two fields of a record: who it claims to be, when the rest does not validate."""

    node: str
    seq: int


_encoder = msgspec.msgpack.Encoder(order="deterministic")
_spans_decoder = msgspec.msgpack.Decoder(list[Span])
_raw_list_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])
_span_decoder = msgspec.msgpack.Decoder(Span)
_id_decoder = msgspec.msgpack.Decoder(SpanId)
_manifest_decoder = msgspec.msgpack.Decoder(Manifest)
_marker_decoder = msgspec.msgpack.Decoder(Marker)
_any_decoder = msgspec.msgpack.Decoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def encode_spans(spans: list[Span] | tuple[Span, ...]) -> bytes:
    return _encoder.encode(spans)


def decode_spans(data: bytes) -> list[Span]:
    """A records payload, validated field by field (msgspec.ValidationError / DecodeError if not)."""
    return _spans_decoder.decode(data)


def decode_span_ids(data: bytes) -> list[tuple[SpanId | None, Span | None, str]]:
    """A records payload one record at a time: (who it claims to be, the record or None, why not).

    The slow path for a batch `decode_spans` refused: which records are bad, and why. Raises
    msgspec errors if the payload is not even an array.
    """
    found: list[tuple[SpanId | None, Span | None, str]] = []
    for raw in _raw_list_decoder.decode(data):
        try:
            found.append((None, _span_decoder.decode(raw), ""))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            try:
                who: SpanId | None = _id_decoder.decode(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                who = None
            found.append((who, None, str(exc)))
    return found


def encode_manifest(manifest: Manifest) -> bytes:
    return _encoder.encode(manifest)


def decode_manifest(data: bytes) -> Manifest:
    return _manifest_decoder.decode(data)


def encode_marker(marker: Marker) -> bytes:
    return _encoder.encode(marker)


def decode_marker(data: bytes) -> Marker | None:
    """A marker frame's payload; None for a kind this build does not know (markers are advisory)."""
    try:
        return _marker_decoder.decode(data)
    except msgspec.ValidationError:
        kind = _any_decoder.decode(data)
        if isinstance(kind, dict) and isinstance(kind.get("kind"), str) and kind["kind"] not in ("incarnation", "lost"):
            return None
        raise


def decode_any(data: bytes) -> Any:
    return _any_decoder.decode(data)
