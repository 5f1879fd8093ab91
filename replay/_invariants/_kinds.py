"""The invariant kinds: the three forms of the text language, plus any Python function.

- `Precedes`   ``every A after B``          each A is causally preceded, in its trace, by a B
- `Never`      ``never A``                  no step matches A
- `NotAfter`   ``never A after B on KEY``   no A causally after a B whose key matches (across nodes)
- `FunctionInvariant`                       `fn(history)` yields the violations

Their descriptions and violation messages are part of the replay report, which is pinned
byte for byte (tests/replay/test_pinned_reports.py): change their wording only on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from edgetrace import _attrs as attr
from edgetrace.replay._invariants._model import Cond, History, Invariant, Selector, Violation

__all__ = ["FunctionInvariant", "Never", "NotAfter", "Precedes"]


class Precedes(Invariant):
    """Every span matching `target` is causally preceded, in its trace, by one matching `required`."""

    def __init__(self, name: str, target: Selector, required: Selector, description: str = "") -> None:
        self.name, self.target, self.required = name, target, required
        self.description = description or f"every {target} after {required}"

    def check(self, history: History) -> list[Violation]:
        found = []
        for span in history.spans:
            if not self.target.matches(span):
                continue
            past = history.index.causal_past(span, trace=span.trace)
            if any(self.required.matches(p) for p in past):
                continue
            near = [p for p in past if self.required.kind is None or p.kind.value == self.required.kind]
            hint = ""
            if near:
                p = near[-1]
                shown = p.attrs.get(attr.OUTPUT, p.attrs.get(attr.DECISION, p.name))
                hint = f"; nearest {p.kind.value} {p.ref} said {shown!r}" + (f" ({p.error})" if p.error else "")
            elif self.required.kind:
                hint = f"; no {self.required.kind} step precedes it in this trace"
            found.append(self.violation(
                history, span,
                f"{span.kind.value} {span.name} at {span.ref} has no `{self.required}` before it in trace "
                f"{span.trace}{hint}",
            ))
        return found


class Never(Invariant):
    """No span matches `target`."""

    def __init__(self, name: str, target: Selector, description: str = "") -> None:
        self.name, self.target = name, target
        self.description = description or f"never {target}"

    def check(self, history: History) -> list[Violation]:
        return [self.violation(history, s, f"{s.kind.value} {s.name} at {s.ref} matches `never {self.target}`")
                for s in history.spans if self.target.matches(s)]


class NotAfter(Invariant):
    """No `target` causally after a `trigger` with a matching key (across nodes and traces) —
    unless a step matching `unless` came causally between them (``… unless C between``)."""

    def __init__(self, name: str, target: Selector, trigger: Selector, key: Cond, key_text: str,
                 description: str = "", unless: Selector | None = None) -> None:
        self.name, self.target, self.trigger, self.key, self.key_text = name, target, trigger, key, key_text
        self.unless = unless
        tail = f" unless {unless} between" if unless is not None else ""
        self.description = description or f"never {target} after {trigger} on {key_text}{tail}"

    def check(self, history: History) -> list[Violation]:
        triggers = [s for s in history.spans if self.trigger.matches(s)]
        between = [s for s in history.spans if self.unless.matches(s)] if self.unless is not None else []
        hb = history.index.happens_before
        found = []
        for span in history.spans:
            if not self.target.matches(span):
                continue
            for t in triggers:
                if t.ref == span.ref or not (self.key(span, t) and hb(t, span)):
                    continue
                if any(hb(t, c) and hb(c, span) for c in between):
                    continue  # released in between: sequential, as it should be
                # the chain shows both stories: how the trigger came about, and the target's own
                steps = {s.ref: s for s in [*history.chain(t, limit=6), *history.chain(span)]}
                chain = tuple(s.ref for s in history.index.causal_sort(steps.values()))
                why = f"; no `{self.unless}` came between them" if self.unless is not None else ""
                found.append(Violation(
                    self.name, span.ref, span.trace, span.node,
                    f"{span.kind.value} {span.name} at {span.ref} happened after {t.kind.value} {t.name} "
                    f"{t.ref} had causally reached it ({self.key_text}){why}", chain, other=t.ref,
                ))
                break
        return found


class FunctionInvariant(Invariant):
    """Any Python check: `fn(history)` yields Violations or (span, message) pairs."""

    def __init__(self, name: str, fn: Callable[[History], Iterable[Any]], description: str = "") -> None:
        self.name, self.fn, self.description = name, fn, description or name

    def check(self, history: History) -> list[Violation]:
        found = []
        for item in self.fn(history):
            if isinstance(item, Violation):
                found.append(item)
            else:
                span, message = item
                found.append(self.violation(history, span, str(message)))
        return found
