"""Which session a foreign span joins, which stored span is its parent, and what seq it gets.

Third step of the ingest (foreign spans → **matched and numbered** → stored). A span joins the
session that holds its trace (the hub's `on_spans` hook shows us the trace ids agents ship, and
an edgetrace trace id maps to an OTel trace id the way `edgetrace export` maps it: the session
id is the id namespace), else the session its resource names (`edgetrace.session.id`), else
the receiver's default. Its parent is a foreign span stored earlier or an agent's span with
that derived span id. Numbering runs under the hub's session lock and continues each node's
seq from the session writer, so foreign seqs are contiguous and survive hub restarts like an
agent's.

What dedup needs survives restarts too: the first time the ingest touches a session it reads
what the session already holds (`load`), so a client retrying spans stored before the hub
restarted is answered, not stored twice.

Everything remembered is bounded (LRUs of `REMEMBER` entries): a hub runs for months.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from edgetrace import _attrs as attr
from edgetrace._otlp.foreign import ForeignSpan
from edgetrace._otlp.ids import IdScheme, is_otel_hex
from edgetrace._records import Manifest, Span, SpanKind

if TYPE_CHECKING:
    from edgetrace._session import SessionWriter

__all__ = ["REMEMBER", "SessionMatcher", "parents_first"]

#: Trace ids, span ids and stored spans kept for matching (each an LRU of this many).
REMEMBER = 200_000
#: Sessions whose stored spans the matcher has read (an LRU: a forgotten one is read again).
LOADED = 1_024


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, size: int = REMEMBER) -> None:
        super().__init__()
        self.size = size

    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


def parents_first(spans: Sequence[ForeignSpan]) -> list[ForeignSpan]:
    """Start-time order, except that a parent in the same batch always comes before its child."""
    by_id = {s.span_id: s for s in spans}
    done: set[str] = set()
    out: list[ForeignSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end, s.node, s.span_id)):
        chain = []
        cur: ForeignSpan | None = span
        while cur is not None and cur.span_id not in done:
            done.add(cur.span_id)  # marks before recursing, so a parent cycle ends here
            chain.append(cur)
            cur = by_id.get(cur.parent_id)
        out.extend(reversed(chain))
    return out


def _ids(session: str) -> IdScheme:
    """A live session's id scheme: its session id is the namespace (see `ids.session_namespace`)."""
    return IdScheme(session)


class SessionMatcher:
    """What the ingest knows of the hub's sessions: their traces and the refs of their spans.

    Plain state, no I/O: `observe` learns from what agents ship, `load` from what a session
    already holds, `number` from what the ingest stores; the rest are questions the receiver
    asks before storing.
    """

    def __init__(self) -> None:
        self._traces: _Lru = _Lru()  # otel trace id hex -> (session, edgetrace trace id)
        self._native: _Lru = _Lru()  # (session, otel span id hex) -> ref of an edgetrace span
        self._refs: _Lru = _Lru()  # (session, trace hex, span hex) -> ref of a stored foreign span
        self._known: _Lru = _Lru()  # (session, edgetrace trace id) seen
        self._loaded: _Lru = _Lru(LOADED)  # sessions read by `load`

    def observe(self, session: str, spans: Iterable[Span]) -> None:
        """Remember which session each edgetrace trace lives in, and its spans' OTel ids."""
        ids = _ids(session)
        for span in spans:
            if span.kind is SpanKind.OTEL:
                self._remember_foreign(session, ids, span)
                continue
            if not span.trace:
                continue
            key = (session, span.trace)
            if key not in self._known:
                self._known.remember(key, True)
                self._traces.remember(f"{ids.trace_id(span.trace):032x}", key)
            self._native.remember((session, f"{ids.span_id(span.ref):016x}"), span.ref)

    def _remember_foreign(self, session: str, ids: IdScheme, span: Span) -> None:
        own = span.attrs.get(attr.OTEL_SPAN_ID)
        if isinstance(own, str) and is_otel_hex(own, 16) and span.trace:
            self._refs.remember((session, f"{ids.trace_id(span.trace):032x}", own), span.ref)

    def loaded(self, session: str) -> bool:
        return session in self._loaded

    def load(self, session: str, spans: Iterable[Span]) -> None:
        """Learn what `session` already holds (after a hub restart): its traces and foreign spans."""
        self._loaded.remember(session, True)
        self.observe(session, spans)

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
        New foreign nodes are added to the session's manifest (with the session id, for a
        session only OTLP clients write to).
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
            writer.write_manifest(Manifest(session_id="" if writer.manifest.session_id else session,
                                           nodes=new_nodes))
        return out
