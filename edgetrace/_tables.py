"""A session's spans as plain rows: what the MCAP and Parquet exports (and `edgetrace query`) carry.

Sits after the store (stored → **exported** as messages or columns). One row per span, in causal
order: ids, node, trace, kind, name, local and Unix times, status, the full vector clock,
attributes and blob hashes. A span taken in over OTLP whose parent came in a later request
has no stored parent ref; its row names the parent it was sent with (re-parented by OTel id),
as an OTLP export does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._records import SpanKind

if TYPE_CHECKING:
    from edgetrace._session import Session

__all__ = ["SPAN_COLUMNS", "session_rows", "time_base_ns"]

#: Row fields and their SQL types (DuckDB), in order.
SPAN_COLUMNS: dict[str, str] = {
    "session": "VARCHAR",
    "ref": "VARCHAR",
    "node": "VARCHAR",
    "seq": "BIGINT",
    "kind": "VARCHAR",
    "name": "VARCHAR",
    "trace": "VARCHAR",
    "parent": "VARCHAR",
    "cause": "VARCHAR",
    "start_ns": "BIGINT",
    "end_ns": "BIGINT",
    "duration_ns": "BIGINT",
    "start_unix_ns": "BIGINT",
    "end_unix_ns": "BIGINT",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "untimed": "BOOLEAN",
    "clock": "MAP(VARCHAR, BIGINT)",
    "attrs": "JSON",
    "blobs": "MAP(VARCHAR, VARCHAR)",
}


def time_base_ns(session: Session) -> int:
    """Unix ns of the session's local time zero: its epoch, else when its file was last written."""
    from edgetrace._otlp.mapping import session_epoch_ns

    base = session_epoch_ns(session.manifest)
    if base == 0 and session.spans:
        native = [s.end for s in session.spans if s.kind is not SpanKind.OTEL]
        base = max(0, session.path.stat().st_mtime_ns - max(native, default=0))
    return base


def session_rows(session: Session) -> Iterator[dict[str, Any]]:
    """Every span of `session` as a row (`SPAN_COLUMNS`), in causal order."""
    base = time_base_ns(session)
    name = session.manifest.session_id or session.path.stem
    index = session.index
    by_otel_id: dict[tuple[str, str], str] = {}
    for span in session.spans:
        own = span.attrs.get(attr.OTEL_SPAN_ID) if span.kind is SpanKind.OTEL else None
        if isinstance(own, str):
            by_otel_id[(span.trace, own)] = span.ref
    for span in index.causal_sort(session.spans):
        foreign = span.kind is SpanKind.OTEL
        parent = span.parent
        if not parent and foreign:
            raw = span.attrs.get(attr.OTEL_PARENT_SPAN_ID)
            parent = by_otel_id.get((span.trace, raw), "") if isinstance(raw, str) else ""
        offset = 0 if foreign else base
        yield {
            "session": name,
            "ref": span.ref,
            "node": span.node,
            "seq": span.seq,
            "kind": span.kind.value,
            "name": span.name,
            "trace": span.trace,
            "parent": parent,
            "cause": span.cause,
            "start_ns": span.start,
            "end_ns": span.end,
            "duration_ns": span.duration,
            "start_unix_ns": offset + span.start,
            "end_unix_ns": offset + max(span.start, span.end),
            "status": span.status.value,
            "error": span.error,
            "untimed": foreign,
            "clock": index.clock(span).as_dict(),
            "attrs": span.attrs,
            "blobs": span.blobs,
        }
