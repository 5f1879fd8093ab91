"""Foreign spans held back until their parents are in hand, so parents are numbered first.

SDKs export a span when it *ends*, so a child usually arrives before its parent, often in
another request. Spans wait per (session, trace) until every parent is in the same group
or already stored; a group still incomplete after the receiver's grace period is let go as
it is (its orphans get no parent ref; the raw id stays in `edgetrace.otel.parent_span_id`).

Plain state, no I/O and no clock of its own: the receiver passes times in and stores what
`take` hands back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from edgetrace._otlp.foreign import ForeignSpan

__all__ = ["ParentBuffer", "parents_first"]

#: (session, OTel trace id hex): the unit spans wait in.
Key = tuple[str, str]


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


class ParentBuffer:
    """Spans waiting for their parents, grouped by (session, trace)."""

    def __init__(self) -> None:
        # (session, trace hex) -> (first arrival, {span hex: span})
        self._pending: dict[Key, tuple[float, dict[str, ForeignSpan]]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, session: str, span: ForeignSpan, now: float) -> Key:
        """Hold `span`; a repeat of a span id already held replaces it."""
        key = (session, span.trace_id)
        entry = self._pending.setdefault(key, (now, {}))
        entry[1][span.span_id] = span
        return key

    def complete(self, key: Key, stored_ref: Callable[[str, str, str], str]) -> bool:
        """Whether every span of group `key` has its parent in the group or stored.

        `stored_ref(session, trace, parent_id)` is the ref of a stored parent, or "".
        """
        session, trace = key
        waiting = self._pending[key][1]
        return all(
            not s.parent_id or s.parent_id in waiting or bool(stored_ref(session, trace, s.parent_id))
            for s in waiting.values()
        )

    def due(self, since: float, *, everything: bool = False) -> list[Key]:
        """Groups whose first span came at or before `since` (or all of them), in key order."""
        return sorted(key for key, (first, _) in self._pending.items() if everything or first <= since)

    def take(self, keys: Iterable[Key]) -> dict[str, list[ForeignSpan]]:
        """Release groups: session -> their spans, parents first within each group."""
        groups: dict[str, list[ForeignSpan]] = {}
        for key in keys:
            entry = self._pending.pop(key, None)
            if entry is not None:
                groups.setdefault(key[0], []).extend(parents_first(list(entry[1].values())))
        return groups
