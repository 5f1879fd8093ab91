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


_OK, _ERROR = Status.OK, Status.ERROR  # looked up once: enum member access is a descriptor call


def _zero() -> int:
    return 0


class Recorder:
    """Records the spans of one node into a sink."""

    def __init__(self, node: str, sink: SpanSink, *, now_ns: Callable[[], int] = _zero,
                 observe: Callable[[Span, StepKey], None] | None = None,
                 start_at: Callable[[StepScope, StepKey], int] | None = None) -> None:
        self.node = node
        self.sink = sink
        self._now_ns = now_ns
        self._observe = _no_observer if observe is None else observe
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

    def step(self, kind: SpanKind, name: str, key: StepKey, scope: StepScope | None = None, *,
             trace: str | None = None, parent: str | None = None, cause: str = "", start: int | None = None,
             end: int | None = None, attrs: Mapping[str, Any] | None = None, error: str = "",
             blobs: Mapping[str, str] | None = None, merge: Mapping[str, int] | None = None) -> Span:
        """Record one step of a handler at its causal position, starting now unless told otherwise.

        `scope` (the handler's Context) supplies trace and parent unless they are given, and
        is told about the step; in a replay, when the step starts comes from the world
        (`start_at`: the time the handler spent since its previous step, as recorded).
        """
        # every step of every handler comes through here: one span, no keyword dicts rebuilt
        copied: dict[str, Any] | None = None
        if scope is not None:
            if trace is None:
                trace = scope.trace
            if parent is None:
                parent = scope.parent
            site = scope.site
            if site or scope.uses_local:
                copied = dict(attrs) if attrs else {}
                if site:
                    copied[attr.CODE] = site
                if scope.uses_local:
                    copied[attr.LOCAL] = True
            if start is None:
                start = self._now_ns() if self._start_at is None else self._start_at(scope, key)
        elif start is None:
            start = self._now_ns()
        span = self._emit(kind, name, trace or "", parent or "", cause, start, start if end is None else end,
                          copied if copied is not None else dict(attrs) if attrs else {}, error,
                          dict(blobs) if blobs else {}, merge)
        if self._observe is not _no_observer:
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
        """Record one span outside any handler's step numbering (a fault record)."""
        return self._emit(kind, name, trace, parent, cause, start, start if end is None else end,
                          dict(attrs) if attrs else {}, error, dict(blobs) if blobs else {}, merge)

    def _emit(self, kind: SpanKind, name: str, trace: str, parent: str, cause: str, start: int, end: int,
              attrs: dict[str, Any], error: str, blobs: dict[str, str], merge: Mapping[str, int] | None) -> Span:
        changes: dict[str, int] = {}
        if merge:
            clock = self._clock
            own = self.node
            for other, value in merge.items():
                if other != own and value > clock.get(other, 0):
                    clock[other] = value
                    changes[other] = value
            if len(changes) > 1:
                changes = dict(sorted(changes.items()))
        self._seq += 1
        span = Span(node=self.node, seq=self._seq, kind=kind, name=name, trace=trace, parent=parent, cause=cause,
                    start=start, end=end, vc=changes, attrs=attrs, status=_ERROR if error else _OK, error=error,
                    blobs=blobs)
        self.sink.emit(span)
        return span
