"""Completion for the filter box: field names, and the values the session actually holds.

While a query is typed, the word under the cursor is completed from what can follow there:
a field name (`kind`, `node`, `decision`, `attr.`…, the causal operators), or after
`FIELD=`/`FIELD~` a value of that field seen in the session — node ids, kinds, span names,
attribute keys after `attr.`, decisions, model outputs. The suggestion appears greyed after
the cursor (Tab or → accepts it) and the other candidates are listed under the box.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.suggester import Suggester
from textual.widgets import Input

from edgetrace import _attrs as attr
from edgetrace._records import SpanKind
from edgetrace.tui._query import FIELDS
from edgetrace.tui._store import TraceStore

__all__ = ["QueryInput", "QuerySuggester", "Vocabulary"]

_WORD = re.compile(r"([A-Za-z_][\w.\-/]*)?(!=|==|!~|>=|<=|=|~|>|<)?([^\s()=!~<>\"']*)$")
_KEYWORDS = ("and", "or", "not", "without", "before(", "after(", "concurrent(")
_ATTR_SAMPLE = 4096  # distinct attribute maps read for keys and values


class Vocabulary:
    """What the session holds, for completion: read from the store's tables on demand."""

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        self._attrs: tuple[int, dict[str, set[str]]] = (-1, {})

    def fields(self) -> list[str]:
        shorthands = [f"{k}." if k in ("output", "args", "payload") else k for k in attr.SHORTHANDS]
        return sorted({*FIELDS, *shorthands, "state.", "attr."})

    def _attr_values(self) -> dict[str, set[str]]:
        arena = self.store.table.arena
        if self._attrs[0] == len(arena):
            return self._attrs[1]
        found: dict[str, set[str]] = {}
        for code in range(min(len(arena), _ATTR_SAMPLE)):
            decoded = arena.decode(code) or {}
            for key, value in decoded.items():
                values = found.setdefault(key, set())
                if isinstance(value, dict):
                    for sub, v in value.items():
                        if isinstance(v, str | int | bool) and len(values) < 64:
                            found.setdefault(f"{key}.{sub}", set()).add(str(v))
                elif isinstance(value, str | int | bool) and len(str(value)) <= 40 and len(values) < 64:
                    values.add(str(value).lower() if isinstance(value, bool) else str(value))
        self._attrs = (len(arena), found)
        return found

    def values(self, name: str) -> list[str]:
        table = self.store.table
        low = name.lower()
        if low == "kind":
            return [k.value for k in SpanKind]
        if low == "node":
            return sorted(n for n in table.nodes.text if n)
        if low == "status":
            return ["ok", "error"]
        if low == "name":
            return sorted({table.names.text[int(c)] for c in set(table.spans.name[: table.span_count].tolist())})
        if low == "from":
            return sorted(n for n in table.nodes.text if n)
        key = attr.SHORTHANDS.get(low.split(".", 1)[0])
        attrs = self._attr_values()
        if key is not None:
            rest = low.split(".", 1)[1] if "." in low else ""
            return sorted(attrs.get(f"{key}.{rest}" if rest else key, set()))
        if low.startswith("attr.") or low.startswith("attrs."):
            return sorted(attrs.get(name.split(".", 1)[1], set()))
        if low.startswith("state."):
            return sorted(attrs.get(attr.STATE_KEY, set()) if low == "state.key" else set())
        return sorted(attrs.get(name, set()))

    def attr_keys(self) -> list[str]:
        return sorted(self._attr_values())


def candidates(vocab: Vocabulary, value: str) -> tuple[str, list[str]]:
    """(what the last word starts with, the completions of it, best first)."""
    m = _WORD.search(value)
    if m is None:
        return "", []
    name, op, typed = m.group(1) or "", m.group(2), m.group(3)
    if op:
        pool: Iterable[str] = vocab.values(name)
        prefix = typed
    elif name.lower().startswith(("attr.", "attrs.")):
        head = name.split(".", 1)[0]
        pool = [f"{head}.{k}" for k in vocab.attr_keys()]
        prefix = name
    else:
        pool = [*vocab.fields(), *_KEYWORDS]
        prefix = name
    low = prefix.lower()
    found = [c for c in pool if c.lower().startswith(low) and c.lower() != low]
    return prefix, found[:50]


class QuerySuggester(Suggester):
    """Completes the last word of a query from the session's vocabulary."""

    def __init__(self, vocab: Vocabulary) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.vocab = vocab

    async def get_suggestion(self, value: str) -> str | None:
        prefix, found = candidates(self.vocab, value)
        if not found:
            return None
        return value[: len(value) - len(prefix)] + found[0]


class QueryInput(Input):
    """The filter box: Tab accepts the completion shown after the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "cursor_right", "complete", show=False),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
