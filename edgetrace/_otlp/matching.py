"""Which session a foreign span joins, which ref its parent has, and which seq it gets.

Third step of the ingest (foreign spans → **numbered** → stored). A foreign span joins the
session that already holds its trace (the hub shows us the trace ids agents ship, and an
edgetrace trace id maps to an OTel trace id the way `edgetrace export` maps it), else the
session its resource names (`edgetrace.session.id`), else the receiver's default. Its parent
is a foreign span stored earlier or an agent's span with that derived span id. Numbering
runs under the hub's session lock and continues each node's seq from the session writer, so
foreign seqs are contiguous and survive hub restarts like an agent's.

Everything remembered is bounded (LRUs of `REMEMBER` entries): a hub runs for months.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from edgetrace._otlp.foreign import ForeignSpan
from edgetrace._otlp.ids import otel_span_id, otel_trace_id
from edgetrace._records import Manifest, Span, SpanKind

if TYPE_CHECKING:
    from edgetrace._session import SessionWriter

__all__ = ["REMEMBER", "SessionMatcher"]

#: Trace ids, span ids and stored spans kept for matching (each an LRU of this many).
REMEMBER = 200_000


class _Lru(OrderedDict[Any, Any]):
    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > REMEMBER:
            self.popitem(last=False)


class SessionMatcher:
    """What the ingest knows of the hub's sessions: their traces and the refs of their spans.

    Plain state, no I/O: `observe` learns from what agents ship, `number` from what the
    ingest stores; the rest are questions the receiver asks while holding spans back.
    """

    def __init__(self) -> None:
        self._traces: _Lru = _Lru()  # otel trace id hex -> (session, edgetrace trace id)
        self._native: _Lru = _Lru()  # (session, otel span id hex) -> ref of an edgetrace span
        self._refs: _Lru = _Lru()  # (session, trace hex, span hex) -> ref of a stored foreign span
        self._known: set[tuple[str, str]] = set()

    def observe(self, session: str, spans: Iterable[Span]) -> None:
        """Remember which session each edgetrace trace lives in, and its spans' OTel ids."""
        for span in spans:
            if span.kind is SpanKind.OTEL or not span.trace:
                continue
            key = (session, span.trace)
            if key not in self._known:
                if len(self._known) > REMEMBER:
                    self._known.clear()
                self._known.add(key)
                self._traces.remember(f"{otel_trace_id(span.trace):032x}", key)
            self._native.remember((session, f"{otel_span_id(span.ref):016x}"), span.ref)

    def session_of(self, span: ForeignSpan, default: str) -> str:
        """The session `span` joins: its trace's, else the one its resource names, else `default`."""
        target = self._traces.get(span.trace_id)
        return str(target[0]) if target else (span.session or default)

    def stored(self, session: str, span: ForeignSpan) -> bool:
        """Whether `span` is already in `session` (a client retrying a request)."""
        return (session, span.trace_id, span.span_id) in self._refs

    def parent_ref(self, session: str, trace_id: str, parent_id: str) -> str:
        """The ref of the stored span with OTel id `parent_id` in `session`, or ""."""
        return str(self._refs.get((session, trace_id, parent_id)) or self._native.get((session, parent_id)) or "")

    def number(self, writer: SessionWriter, session: str, spans: Sequence[ForeignSpan]) -> list[Span]:
        """Runs under the session lock: give each span the next seq of its node.

        `spans` come parents first, so a parent numbered here is found by its children.
        New foreign nodes are added to the session's manifest.
        """
        out: list[Span] = []
        next_seq: dict[str, int] = {}
        for fs in spans:
            seen_key = (session, fs.trace_id, fs.span_id)
            if seen_key in self._refs:
                continue  # a client retry of spans already stored
            seq = next_seq.get(fs.node, writer.last_seq.get(fs.node, 0)) + 1
            next_seq[fs.node] = seq
            ref = f"{fs.node}:{seq}"
            parent = self.parent_ref(session, fs.trace_id, fs.parent_id) if fs.parent_id else ""
            self._refs.remember(seen_key, ref)
            target = self._traces.get(fs.trace_id)
            trace = target[1] if target and target[0] == session else fs.trace_id
            out.append(Span(node=fs.node, seq=seq, kind=SpanKind.OTEL, name=fs.name, trace=trace,
                            parent=parent, start=fs.start, end=fs.end, attrs=fs.attrs,
                            status=fs.status, error=fs.error))
        new_nodes = sorted(set(next_seq) - set(writer.manifest.nodes))
        if new_nodes:
            writer.write_manifest(Manifest(nodes=new_nodes))
        return out
