"""The recorder: turns each Context operation into one span with a vector-clock tick.

It owns the node's clock and sequence number. Every recorded event ticks the node's own
entry (so the entry equals the span's seq); a receive first merges the sender's clock. The
span stores only the entries of other nodes that changed since this node's previous span,
which keeps a local step at an empty map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgetrace.agents._sink import SpanSink

from edgetrace._codec import encode
from edgetrace._records import Span, SpanKind, Status
from edgetrace._vclock import VectorClock, delta

__all__ = ["Recorder"]


class Recorder:
    """Records the spans of one node into a sink."""

    def __init__(self, node: str, sink: SpanSink) -> None:
        self.node = node
        self.sink = sink
        self.clock = VectorClock()
        self._emitted = VectorClock()

    @property
    def seq(self) -> int:
        return self.clock[self.node]

    def blob(self, value: Any) -> str:
        """Store a payload (bytes as is, anything else MessagePack-encoded)."""
        data = value if isinstance(value, bytes) else encode(value)
        return self.sink.put_blob(data)

    def record(
        self,
        kind: SpanKind,
        name: str,
        *,
        trace: str = "",
        parent: str = "",
        cause: str = "",
        start: int = 0,
        end: int | None = None,
        attrs: Mapping[str, Any] | None = None,
        error: str = "",
        blobs: Mapping[str, str] | None = None,
        merge: Mapping[str, int] | None = None,
    ) -> Span:
        if merge:
            self.clock = self.clock.merge(merge)
        self.clock = self.clock.tick(self.node)
        changes = delta(self._emitted, self.clock, own=self.node)
        self._emitted = self.clock
        span = Span(
            node=self.node,
            seq=self.clock[self.node],
            kind=kind,
            name=name,
            trace=trace,
            parent=parent,
            cause=cause,
            start=start,
            end=start if end is None else end,
            vc=changes,
            attrs=dict(attrs or {}),
            status=Status.ERROR if error else Status.OK,
            error=error,
            blobs=dict(blobs or {}),
        )
        self.sink.emit(span)
        return span
