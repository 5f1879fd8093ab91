"""The explorer's slim decode of span records: only what one trace-list row needs.

Decoding a records frame into full `Span`s builds every clock and attribute dict, which is
right for replay but the larger part of the explorer's scan of a million spans. `SlimSpan`
reads the same MessagePack arrays positionally and keeps the clock and attributes as raw
bytes; attributes are decoded only for the few spans that need them (decisions).

`SlimSpan` mirrors `Span` field for field, in the same order, with the same defaults, up to
the last field the explorer reads (a test pins it to `Span`): a field added to `Span` goes
after `blobs`, which this decode never reaches.
"""

from __future__ import annotations

from typing import Any

import msgspec

from edgetrace._records import Nanos, Seq

__all__ = ["SlimSpan", "decode_attrs", "decode_slim_spans"]


class SlimSpan(msgspec.Struct, array_like=True, gc=False):
    """The columns of a span record the trace list needs; the rest stays undecoded.

    `kind` and `status` stay strings: checking them against the enums costs time per span
    and the trace list only compares them. Not tracked by the cyclic garbage collector (it
    holds only strings, numbers and raw bytes): tracked, every frame's thousand spans fed the
    collector's counters, and spans the scan still held were promoted and walked by full
    collections.
    """

    node: str
    seq: Seq  # the bounds `Span` has: a value a reader cannot hold is refused here too
    kind: str
    name: str
    trace: str = ""
    parent: str = ""
    cause: str = ""
    start: Nanos = 0
    end: Nanos = 0
    vc: msgspec.Raw = msgspec.Raw(b"\x80")  # an empty map, as `Span.vc` defaults to
    attrs: msgspec.Raw = msgspec.Raw(b"\x80")
    status: str = "ok"
    error: str = ""


_decoders: dict[str, Any] = {}


def _decoder(name: str) -> Any:
    """Decoders are built on first use: building them is not free and the UI may never need one."""
    dec = _decoders.get(name)
    if dec is None:
        dec = _decoders[name] = (msgspec.msgpack.Decoder(list[SlimSpan]) if name == "slim"
                                 else msgspec.msgpack.Decoder(dict[str, Any]))
    return dec


def decode_slim_spans(body: bytes) -> list[SlimSpan]:
    """The records of one records frame body (compression already undone)."""
    spans: list[SlimSpan] = _decoder("slim").decode(body)
    return spans


def decode_attrs(span: SlimSpan) -> dict[str, Any]:
    """A slim span's attributes, decoded now."""
    attrs: dict[str, Any] = _decoder("attrs").decode(span.attrs) if span.attrs else {}
    return attrs
