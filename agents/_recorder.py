"""The recorder: turns each Context operation into one span with a vector-clock tick.

It owns the node's clock and sequence number. Every recorded event ticks the node's own
entry (so the entry equals the span's seq); a receive first merges the sender's clock. The
span stores only the entries of other nodes that changed since this node's previous span,
which keeps a local step at an empty map. The clock is a mutable dict plus the set of
entries changed since the last span, so a step costs O(entries changed), not O(grid size).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from edgetrace import _attrs as attr
from edgetrace._codec import encode
from edgetrace._records import Span, SpanKind, Status
from edgetrace._stepkey import StepKey
from edgetrace._vclock import VectorClock
from edgetrace.agents._sink import SpanSink

__all__ = ["Recorder", "StepScope"]


class StepScope(Protocol):
    """Where a handler's step belongs: its trace, the span it continues, its last step (a `Context`)."""

    @property
    def trace(self) -> str: ...

    @property
    def parent(self) -> str: ...

    @property
    def last_step(self) -> tuple[StepKey, int] | None: ...

    @property
    def site(self) -> str: ...

    @property
    def uses_local(self) -> bool: ...

    def note(self, key: StepKey, end_ns: int) -> None: ...


def _no_observer(span: Span, key: StepKey) -> None:
    pass


def _zero() -> int:
    return 0


class Recorder:
    """Records the spans of one node into a sink."""

    def __init__(self, node: str, sink: SpanSink, *, now_ns: Callable[[], int] = _zero,
                 observe: Callable[[Span, StepKey], None] = _no_observer,
                 start_at: Callable[[StepScope, StepKey], int] | None = None) -> None:
        self.node = node
        self.sink = sink
        self._now_ns = now_ns
        self._observe = observe
        self._start_at = start_at
        self._clock: dict[str, int] = {}
        self._seq = 0

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def clock(self) -> VectorClock:
        return VectorClock({**self._clock, self.node: self._seq})

    def resume(self, seq: int, clock: dict[str, int]) -> None:
        """Continue a stream after a restart: the spool knows the last seq and clock."""
        self._seq = seq
        self._clock = {k: v for k, v in clock.items() if k != self.node}

    def clock_dict(self) -> dict[str, int]:
        """The full clock as a plain dict (what a message carries)."""
        found = dict(self._clock)
        found[self.node] = self._seq
        return found

    def blob(self, value: Any) -> str:
        """Store a payload (bytes as is, anything else MessagePack-encoded)."""
        data = value if isinstance(value, bytes) else encode(value)
        return self.sink.put_blob(data)

    def step(self, kind: SpanKind, name: str, key: StepKey, scope: StepScope | None = None,
             **fields: Any) -> Span:
        """Record one step of a handler at its causal position, starting now unless told otherwise.

        `scope` (the handler's Context) supplies trace and parent unless `fields` name them, and
        is told about the step; in a replay, when the step starts comes from the world
        (`start_at`: the time the handler spent since its previous step, as recorded).
        """
        if scope is not None:
            fields.setdefault("trace", scope.trace)
            fields.setdefault("parent", scope.parent)
            if scope.site or scope.uses_local:
                extra: dict[str, Any] = {attr.CODE: scope.site} if scope.site else {}
                if scope.uses_local:
                    extra[attr.LOCAL] = True
                fields["attrs"] = {**fields.get("attrs", {}), **extra}
        if "start" not in fields:
            fields["start"] = (self._start_at(scope, key) if scope is not None and self._start_at is not None
                               else self._now_ns())
        span = self.record(kind, name, **fields)
        self._observe(span, key)
        if scope is not None:
            scope.note(key, span.end)
        return span

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
        changes: dict[str, int] = {}
        if merge:
            clock = self._clock
            own = self.node
            for other, value in merge.items():
                if other != own and value > clock.get(other, 0):
                    clock[other] = value
                    changes[other] = value
        self._seq += 1
        span = Span(
            node=self.node,
            seq=self._seq,
            kind=kind,
            name=name,
            trace=trace,
            parent=parent,
            cause=cause,
            start=start,
            end=start if end is None else end,
            vc=dict(sorted(changes.items())) if len(changes) > 1 else changes,
            attrs=dict(attrs or {}),
            status=Status.ERROR if error else Status.OK,
            error=error,
            blobs=dict(blobs or {}),
        )
        self.sink.emit(span)
        return span
