"""Divergences: where a replay's steps differ from the recording's.

Steps are aligned by causal position — (trace, node, kind, name, occurrence) — never by
timestamps, so a replay that runs 2 s later still lines up step for step. Two aligned
steps differ when their outcome differs (a model's output, a decision, an action's
arguments, a state value, a status) or when they were caused by different steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._index import CausalIndex
from edgetrace._records import Span, SpanKind

__all__ = ["Divergence", "compare", "outcome"]

from edgetrace._stepkey import StepKey

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
    """One step that differs: `changed`, `missing` (recorded, not replayed) or `extra`."""

    kind: str
    key: StepKey
    recorded: str = ""
    replayed: str = ""
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    order: int = 0

    @property
    def trace(self) -> str:
        return self.key[0]

    def describe(self) -> str:
        _trace, node, kind, name, occ = self.key
        where = f"{kind} {name}" + (f" #{occ}" if occ > 1 else "") + f" on {node}"
        if self.kind == "missing":
            return f"{where}: recorded as {self.recorded}, did not happen in the replay"
        if self.kind == "extra":
            return f"{where}: happened in the replay ({self.replayed}), not in the recording"
        parts = [f"{k}: {_short(a)} → {_short(b)}" for k, (a, b) in sorted(self.fields.items())]
        return f"{where} ({self.recorded} vs {self.replayed}): " + "; ".join(parts)

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
        }


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compare(
    recorded: list[Span], recorded_keys: Mapping[str, StepKey], recorded_index: CausalIndex,
    replayed: list[Span], replayed_keys: Mapping[str, StepKey], replayed_index: CausalIndex,
) -> list[Divergence]:
    """All divergences, ordered by trace, then causal order, then position."""
    rec = {recorded_keys[s.ref]: s for s in recorded if s.ref in recorded_keys and s.kind not in IGNORED_KINDS}
    rep = {replayed_keys[s.ref]: s for s in replayed if s.ref in replayed_keys and s.kind not in IGNORED_KINDS}
    found: list[Divergence] = []
    for key in sorted(set(rec) | set(rep)):
        a, b = rec.get(key), rep.get(key)
        if a is not None and b is None:
            found.append(Divergence("missing", key, recorded=a.ref, order=recorded_index.clock_sum(a)))
        elif a is None and b is not None:
            found.append(Divergence("extra", key, replayed=b.ref, order=replayed_index.clock_sum(b)))
        elif a is not None and b is not None:
            oa, ob = outcome(a, recorded_keys), outcome(b, replayed_keys)
            if oa != ob:
                fields = {k: (oa.get(k), ob.get(k)) for k in sorted(set(oa) | set(ob)) if oa.get(k) != ob.get(k)}
                found.append(Divergence("changed", key, a.ref, b.ref, fields, replayed_index.clock_sum(b)))
    found.sort(key=lambda d: (d.key[0], d.order, d.key))
    return found
