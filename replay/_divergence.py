"""Divergences: where a replay's steps differ from the recording's.

Steps are aligned by causal position — (trace, node, kind, name, occurrence) — never by
timestamps, so a replay that runs 2 s later still lines up step for step. Two aligned
steps differ when their outcome differs (a model's output, a decision, an action's
arguments, a state value, a status) or when they were caused by different steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind
from edgetrace._stepkey import StepKey

__all__ = ["Divergence", "compare", "outcome"]

_OUTCOME_ATTRS: dict[SpanKind, tuple[str, ...]] = {
    SpanKind.INPUT: (attr.PAYLOAD,),
    SpanKind.INFER: (attr.OUTPUT, attr.MODEL_SHA256),
    SpanKind.DECIDE: (attr.DECISION, attr.RULES_FIRED, attr.POLICY_SHA256),
    SpanKind.ACT: (attr.ACT_ARGS,),
    SpanKind.STATE_GET: (attr.STATE_KEY, attr.STATE_VALUE),
    SpanKind.STATE_PUT: (attr.STATE_KEY, attr.STATE_VALUE),
    SpanKind.SEND: (attr.TO, attr.PAYLOAD),
    SpanKind.RECV: (attr.PAYLOAD, attr.LATE),
    SpanKind.LOG: (attr.MESSAGE,),
}

#: Steps whose difference is not a divergence of the pipeline itself.
IGNORED_KINDS = frozenset({SpanKind.FAULT})


def outcome(span: Span, keys: Mapping[str, StepKey]) -> dict[str, Any]:
    """The parts of a step that must be equal for the replay to have followed the recording."""
    found: dict[str, Any] = {"status": span.status.value}
    if span.error:
        found["error"] = span.error
    for name in _OUTCOME_ATTRS.get(span.kind, ()):
        if name in span.attrs:
            found[name] = span.attrs[name]
    if span.cause:
        cause = keys.get(span.cause)
        found["cause"] = list(cause) if cause else span.cause
    return found


@dataclass(frozen=True)
class Divergence:
    """One step that differs: `changed`, `missing` (recorded, not replayed) or `extra`.

    `ordinal` is the step's place in its trace in causal order (1 = the input), `site` the app
    line that issued it (from the replayed step, else the recorded one): what an engineer needs
    to find the handler code that went its own way.
    """

    kind: str
    key: StepKey
    recorded: str = ""
    replayed: str = ""
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    order: int = 0
    ordinal: int = 0
    site: str = ""

    @property
    def trace(self) -> str:
        return self.key[0]

    def step(self) -> str:
        _trace, _node, kind, name, occ = self.key
        return f"{kind} {name}" + (f" (#{occ})" if occ > 1 else "")

    def describe(self) -> str:
        """One sentence: what was expected where, what the replay did instead, which line issued it."""
        trace = self.key[0]
        place = f"{_ordinal(self.ordinal)} step of trace {trace}" if self.ordinal else f"trace {trace}"
        issued = f" — issued at {self.site}" if self.site else ""
        if self.kind == "missing":
            return f"expected {self.step()} at {self.recorded} ({place}); the replay never took it{issued}"
        if self.kind == "extra":
            return f"the replay took {self.step()} at {self.replayed} ({place}), which the recording never did{issued}"
        first = {"status": 0, "error": 1, "cause": 3}  # what went wrong, then what, then why
        ordered = sorted(self.fields.items(), key=lambda kv: (first.get(kv[0], 2), kv[0]))
        what = "; ".join(_in_words(k, a, b) for k, (a, b) in ordered)
        return f"expected {self.step()} at {self.recorded} ({place}); the replay produced it with {what}{issued}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "trace": self.key[0],
            "node": self.key[1],
            "step": self.key[2],
            "name": self.key[3],
            "occurrence": self.key[4],
            "recorded": self.recorded,
            "replayed": self.replayed,
            "fields": {k: {"recorded": a, "replayed": b} for k, (a, b) in sorted(self.fields.items())},
            "description": self.describe(),
            "step_in_trace": self.ordinal,
            "issued_at": self.site,
        }


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _value(value: Any, limit: int = 60) -> str:
    """A value as a person reads it: JSON-like, short, never a Python repr of a structure."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cause(value: Any) -> str:
    if isinstance(value, list) and len(value) == 5:
        trace, node, kind, name, occ = value
        return f"{kind} {name} on {node}" + (f" (#{occ})" if occ > 1 else "") + f" in trace {trace}"
    return "nothing" if value is None else str(value)


_WORDS = {
    attr.PAYLOAD: "a different payload",
    attr.OUTPUT: "a different model output",
    attr.MODEL_SHA256: "a different model",
    attr.DECISION: "a different decision",
    attr.RULES_FIRED: "different rules fired",
    attr.POLICY_SHA256: "a different policy",
    attr.ACT_ARGS: "different arguments",
    attr.STATE_KEY: "a different state key",
    attr.STATE_VALUE: "a different value",
    attr.TO: "a different destination",
    attr.MESSAGE: "a different log message",
}


def _in_words(name: str, recorded: Any, replayed: Any) -> str:
    if name == "status":
        return f"status {replayed} instead of {recorded}"
    if name == "error":
        if not replayed:
            return f"no error (recorded: {_value(recorded)})"
        return f"error {_value(replayed)}" + (f" instead of {_value(recorded)}" if recorded else "")
    if name == "cause":
        return f"a different cause: {_cause(replayed)} instead of {_cause(recorded)}"
    if name == attr.LATE:
        return "a reply that came late" if replayed else "a reply that came in time (recorded: late)"
    words = _WORDS.get(name, f"a different {name.removeprefix('edgetrace.')}")
    return f"{words} ({_value(recorded)} → {_value(replayed)})"


def compare(
    recorded: list[Span], recorded_keys: Mapping[str, StepKey], recorded_index: CausalIndex,
    replayed: list[Span], replayed_keys: Mapping[str, StepKey], replayed_index: CausalIndex,
) -> list[Divergence]:
    """All divergences, ordered by trace, then causal order, then position."""
    rec = {recorded_keys[s.ref]: s for s in recorded if s.ref in recorded_keys and s.kind not in IGNORED_KINDS}
    rep = {replayed_keys[s.ref]: s for s in replayed if s.ref in replayed_keys and s.kind not in IGNORED_KINDS}
    found: list[Divergence] = []
    places: tuple[dict[str, int], dict[str, int]] | None = None
    for key in sorted(set(rec) | set(rep)):
        a, b = rec.get(key), rep.get(key)
        if a is not None and b is not None:
            oa, ob = outcome(a, recorded_keys), outcome(b, replayed_keys)
            if oa == ob:
                continue
        if places is None:  # only a replay that diverged pays for placing steps in their traces
            places = (_places(recorded, recorded_index), _places(replayed, replayed_index))
        if a is not None and b is None:
            found.append(Divergence("missing", key, recorded=a.ref, order=recorded_index.clock_sum(a),
                                    ordinal=places[0].get(a.ref, 0), site=_site(a)))
        elif a is None and b is not None:
            found.append(Divergence("extra", key, replayed=b.ref, order=replayed_index.clock_sum(b),
                                    ordinal=places[1].get(b.ref, 0), site=_site(b)))
        elif a is not None and b is not None:
            fields = {k: (oa.get(k), ob.get(k)) for k in sorted(set(oa) | set(ob)) if oa.get(k) != ob.get(k)}
            found.append(Divergence("changed", key, a.ref, b.ref, fields, replayed_index.clock_sum(b),
                                    ordinal=places[0].get(a.ref, 0), site=_site(b) or _site(a)))
    found.sort(key=lambda d: (d.key[0], d.order, d.key))
    return found


def _site(span: Span) -> str:
    site = span.attrs.get(attr.CODE)
    return site if isinstance(site, str) else ""


def _places(spans: list[Span], index: CausalIndex) -> dict[str, int]:
    """Each step's 1-based place in its trace, in causal order."""
    counts: dict[str, int] = {}
    found: dict[str, int] = {}
    for span in index.causal_sort(s for s in spans if s.kind not in IGNORED_KINDS):
        counts[span.trace] = counts.get(span.trace, 0) + 1
        found[span.ref] = counts[span.trace]
    return found
