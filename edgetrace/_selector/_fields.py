"""Field names: which value of a span a name such as `output.type` or `attr.KEY` reads.

Both span languages name values the same way, so a name resolves here once, at parse time,
into a getter the compiled query or invariant calls per span (the explorer runs it over up to
a million spans, so the getter does no parsing). A getter returns `MISSING` when the span has
no such value; each language decides what an absent value means (see `edgetrace._selector`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from edgetrace import _attrs as attr
from edgetrace._records import Span

__all__ = ["ATTR_PREFIXES", "MISSING", "SPAN_FIELDS", "TEXT_FIELDS", "Field", "Getter", "Missing", "field"]


class Missing(enum.Enum):
    """The type of `MISSING`: an enum, so type checkers narrow `value is MISSING`."""

    MISSING = "missing"

    def __repr__(self) -> str:
        return "MISSING"


#: What a getter returns for a value the span does not have (never the same as `None`).
MISSING: Final = Missing.MISSING

Getter = Callable[[Span], Any]

#: Fields of the span itself: a single name reads one of these before any attribute.
SPAN_FIELDS: Final[dict[str, str]] = {
    "kind": "span kind (input infer decide send recv state.get state.put act log fault otel)",
    "node": "node id",
    "name": "step name (model, policy, topic, action)",
    "trace": "trace id",
    "ref": "span reference NODE:SEQ",
    "seq": "per-node sequence number",
    "status": "ok or error",
    "error": "error message",
    "duration": "span duration (units ns us ms s m h)",
    "parent": "parent span ref",
    "cause": "ref of the send that caused a recv",
}

#: `attr.KEY` and `attrs.KEY` both name an attribute by its key (the explorer said one, the
#: invariant language the other; both are accepted everywhere).
ATTR_PREFIXES: Final = ("attr", "attrs")

_STATE: Final = "state"

#: Span fields whose value is always text (the record model types them `str`).
TEXT_FIELDS: Final = frozenset({"kind", "node", "name", "trace", "ref", "status", "error", "parent", "cause"})

_SPAN_GETTERS: Final[dict[str, Getter]] = {
    # `_value_` is the enum member's plain value; a C getter is 3x a lambda reading `.value`
    "kind": attrgetter("kind._value_"),
    "status": attrgetter("status._value_"),
    "ref": attrgetter("ref"),
    "duration": attrgetter("duration"),
    **{name: attrgetter(name) for name in ("node", "name", "trace", "seq", "error", "parent", "cause")},
}


def _missing(span: Span) -> Any:
    return MISSING


@dataclass(frozen=True)
class Field:
    """A resolved name. `known` is false for a single word that names nothing (`bogus`):
    the explorer rejects those as typos, invariants keep them as never-matching."""

    path: tuple[str, ...]
    known: bool
    get: Getter


def _prefixes(parts: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Attribute keys a dotted path can start with, longest first: attribute keys are
    themselves dotted (`edgetrace.decision`, `gen_ai.usage.input_tokens`), and what follows
    the key reads inside its value (`edgetrace.output.type`)."""
    return [(".".join(parts[:n]), tuple(parts[n:])) for n in range(len(parts), 0, -1)]


def _attr_getter(candidates: list[tuple[str, tuple[str, ...]]]) -> Getter:
    if len(candidates) == 1 and not candidates[0][1]:
        key = candidates[0][0]
        return lambda s: s.attrs.get(key, MISSING)

    def get(span: Span) -> Any:
        attrs = span.attrs
        for key, rest in candidates:  # the first key the span has wins
            if key in attrs:
                value = attrs[key]
                for part in rest:
                    if isinstance(value, Mapping) and part in value:
                        value = value[part]
                    else:
                        return MISSING
                return value
        return MISSING

    return get


def field(path: str | Sequence[str]) -> Field:
    """Resolve a name, given as `a.b.c` or as its parts (quoted parts may hold dots).

    In order: a span field (`node`, `duration`, …); `state.KEY…` (a state step's key or
    value); a shorthand (`output`, `decision`, `fired`, `args`, `payload`, then keys inside
    it); `attr.KEY` / `attrs.KEY`; any other dotted name as an attribute key. Where a name
    could be read more than one way, the first reading the span has a value for wins.
    """
    parts = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
    if not parts:
        raise ValueError("empty field name")
    head, rest = parts[0], parts[1:]
    if not rest and head in _SPAN_GETTERS:
        return Field(parts, True, _SPAN_GETTERS[head])
    candidates: list[tuple[str, tuple[str, ...]]] = []
    if head == _STATE and rest:
        candidates.append((attr.STATE_PREFIX + rest[0], rest[1:]))
    elif head in attr.SHORTHANDS:
        candidates.append((attr.SHORTHANDS[head], rest))
    if head in ATTR_PREFIXES and rest:
        candidates.extend(_prefixes(rest))
    elif rest:
        candidates.extend(_prefixes(parts))
    unique = list(dict.fromkeys(candidates))
    if not unique:
        return Field(parts, False, _missing)
    return Field(parts, True, _attr_getter(unique))
