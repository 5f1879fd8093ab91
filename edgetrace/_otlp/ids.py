"""OTel ids for edgetrace spans: derived, never random.

Exporting the same session twice gives the same trace and span ids, and a parent always
points at the span that was exported for it; the ingest derives the same ids to find the
edgetrace trace (and span) a foreign span belongs under:

- trace id: the edgetrace trace id itself when it is 32 hex digits, else 128 bits of
  sha256(trace);
- span id: the original OTel span id for spans the hub took in over OTLP, else 64 bits of
  sha256(node:seq).

`namespace` mixes extra text into derived ids, so a recording and its replay (same trace
ids) do not merge in a backend.
"""

from __future__ import annotations

import hashlib

__all__ = ["OTEL_NODE_PREFIX", "is_otel_hex", "otel_span_id", "otel_trace_id"]

#: Node names of spans taken in over OTLP start with this, then the service name (`otel:checkout`).
OTEL_NODE_PREFIX = "otel:"

_HEX = frozenset("0123456789abcdef")


def is_otel_hex(text: str, size: int) -> bool:
    """Whether `text` is a valid OTel id in lower-case hex: `size` digits, not all zero."""
    return len(text) == size and set(text) <= _HEX and set(text) != {"0"}


def otel_trace_id(trace: str, *, namespace: str = "") -> int:
    """The 128-bit OTel trace id of an edgetrace trace id (stable across runs and hosts)."""
    if not namespace and is_otel_hex(trace, 32):
        return int(trace, 16)
    digest = hashlib.sha256(f"edgetrace-trace\0{namespace}\0{trace}".encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1


def otel_span_id(ref: str, *, namespace: str = "") -> int:
    """The 64-bit OTel span id of a span reference `node:seq`."""
    digest = hashlib.sha256(f"edgetrace-span\0{namespace}\0{ref}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1
