"""What invariants are made of: which steps (`Selector`), a run (`History`), a break (`Violation`).

The replayer builds a `History` from a run's spans; each `Invariant` (see `_kinds`) checks it
and returns `Violation`s, which the replay report prints with their causal chains. Selectors
are written in the invariant language (`_parser`) or built in code; their name and node globs
and their conditions come from the shared selector core, `edgetrace._selector`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _selector as sel
from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind

__all__ = ["Cond", "History", "Invariant", "Selector", "Violation", "check_all"]

_CHAIN_KINDS = frozenset({SpanKind.INPUT, SpanKind.INFER, SpanKind.DECIDE, SpanKind.STATE_GET,
                          SpanKind.STATE_PUT, SpanKind.RECV, SpanKind.ACT, SpanKind.FAULT, SpanKind.SEND})


class History:
    """A run's spans with their causal index: what invariants are checked against."""

    def __init__(self, spans: Iterable[Span]) -> None:
        self.spans = list(spans)
        self.index = CausalIndex(self.spans)
        self._by_ref = {s.ref: s for s in self.spans}

    def get(self, ref: str) -> Span | None:
        return self._by_ref.get(ref)

    def by_trace(self) -> dict[str, list[Span]]:
        groups: dict[str, list[Span]] = {}
        for span in self.index.causal_sort(self.spans):
            groups.setdefault(span.trace, []).append(span)
        return dict(sorted(groups.items()))

    def chain(self, span: Span, *, limit: int = 20) -> list[Span]:
        """The steps that led to `span`: its causal past in its trace plus cross-trace causes."""
        past = self.index.causal_past(span)
        causes = {s.cause for s in past if s.trace == span.trace and s.cause}
        if span.cause:
            causes.add(span.cause)
        keep = [s for s in past if s.kind in _CHAIN_KINDS and (s.trace == span.trace or s.ref in causes)]
        return [*keep[-(limit - 1):], span] if limit > 1 else [span]


@dataclass(frozen=True)
class Violation:
    invariant: str
    span: str
    trace: str
    node: str
    message: str
    chain: tuple[str, ...] = ()
    other: str = ""  # the other step of a pairwise finding (exclusion), if any

    def to_dict(self) -> dict[str, Any]:
        found = {"invariant": self.invariant, "span": self.span, "trace": self.trace, "node": self.node,
                 "message": self.message, "chain": list(self.chain)}
        if self.other:
            found["other"] = self.other
        return found


class Invariant(abc.ABC):
    """A named property every run must have."""

    name: str = ""
    description: str = ""

    @abc.abstractmethod
    def check(self, history: History) -> list[Violation]:
        """Every violation in the history."""

    def selectors(self) -> list[Selector]:
        """The selectors this invariant is made of (what a plan check validates against a session)."""
        return [v for v in vars(self).values() if isinstance(v, Selector)]

    def violation(self, history: History, span: Span, message: str) -> Violation:
        return Violation(self.name, span.ref, span.trace, span.node, message,
                         tuple(s.ref for s in history.chain(span)))


#: A condition over a step and, in `never A after B on KEY`, the trigger step B (else None).
Cond = Callable[[Span, Span | None], bool]


@dataclass(frozen=True)
class Selector:
    """Which steps: a kind, a name glob, a node glob and a condition."""

    kind: str | None = None
    name: str = "*"
    node: str = "*"
    where: Cond | None = None
    text: str = ""
    # globs compiled once: a selector is tested against every span of every run
    _name: Callable[[str], bool] = field(init=False, repr=False, compare=False)
    _node: Callable[[str], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_name", sel.glob(self.name))
        object.__setattr__(self, "_node", sel.glob(self.node))

    def matches(self, span: Span) -> bool:
        if self.kind is not None and span.kind.value != self.kind:
            return False
        if not self._name(span.name) or not self._node(span.node):
            return False
        return self.where is None or bool(self.where(span, None))

    def __str__(self) -> str:
        return self.text


def check_all(invariants: Sequence[Invariant], history: History) -> list[Violation]:
    """Every invariant's violations, in report order: by trace, node, step, then invariant."""
    found = [v for inv in invariants for v in inv.check(history)]
    seq_of = {s.ref: s.seq for s in history.spans}
    return sorted(found, key=lambda v: (v.trace, v.node, seq_of.get(v.span, 0), v.invariant))
