"""Handler errors in a session: the app's uncaught exceptions, found and summarised.

The node runtime records an exception that escapes a handler as a `log handler.error` step
with the app line it came out of (`edgetrace.code`). `record`, `show` and `replay` all
summarise them the same way — "3 handler errors in 2 traces: KeyError: 'row' at app.py:88
(2×)" — so an app's bug is a finding wherever a person looks, never a silent log line.
"""

from __future__ import annotations

from collections.abc import Iterable

from edgetrace import _attrs as attr
from edgetrace._records import Span, SpanKind

__all__ = ["HANDLER_ERROR", "error_groups", "error_summary", "is_handler_error"]


#: The log step a handler's uncaught exception is recorded as.
HANDLER_ERROR = "handler.error"


def is_handler_error(span: Span) -> bool:
    return span.kind is SpanKind.LOG and span.name == HANDLER_ERROR


def error_groups(spans: Iterable[Span]) -> list[tuple[str, str, list[Span]]]:
    """Handler errors grouped by (what, where): ("KeyError: 'row'", "app.py:88", spans), most first."""
    groups: dict[tuple[str, str], list[Span]] = {}
    for span in spans:
        if is_handler_error(span):
            where = span.attrs.get(attr.CODE)
            groups.setdefault((span.error, where if isinstance(where, str) else ""), []).append(span)
    return sorted(((what, where, found) for (what, where), found in groups.items()),
                  key=lambda g: (-len(g[2]), g[1], g[0]))


def error_summary(spans: Iterable[Span], *, limit: int = 3) -> str:
    """`3 handler errors in 2 traces: KeyError: 'row' at app.py:88 (2×), …` ('' when none)."""
    groups = error_groups(spans)
    if not groups:
        return ""
    total = sum(len(g) for _, _, g in groups)
    traces = len({s.trace for _, _, g in groups for s in g})
    parts = [f"{what}" + (f" at {where}" if where else "") + (f" ({len(g)}×)" if len(g) > 1 else "")
             for what, where, g in groups[:limit]]
    more = f", and {len(groups) - limit} more kinds" if len(groups) > limit else ""
    return f"{total} handler error{'s' if total != 1 else ''} in {traces} trace{'s' if traces != 1 else ''}: " \
           + ", ".join(parts) + more
