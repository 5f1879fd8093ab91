"""A replay's findings as report rows: steps, handler errors, causal cuts, pairs and the
decisions a counterfactual compares. Plain data out, so the report encodes byte for byte."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._handler_errors import is_handler_error
from edgetrace._records import Span, SpanKind
from edgetrace._stepkey import StepKey
from edgetrace._why import CutStep, PairCut, Why

__all__ = ["cut_rows", "decision_rows", "handler_error_rows", "pair_row", "step_row", "violations_per_trace"]


def step_row(span: Any) -> dict[str, Any]:
    attrs = span.attrs
    summary: Any = None
    if span.kind is SpanKind.INFER:
        summary = attrs.get(attr.OUTPUT)
    elif span.kind is SpanKind.DECIDE:
        summary = {"decision": attrs.get(attr.DECISION), "fired": attrs.get(attr.RULES_FIRED)}
    elif span.kind is SpanKind.ACT:
        summary = attrs.get(attr.ACT_ARGS)
    elif span.kind in (SpanKind.STATE_GET, SpanKind.STATE_PUT):
        summary = {"key": attrs.get(attr.STATE_KEY), "value": attrs.get(attr.STATE_VALUE)}
    elif span.kind in (SpanKind.INPUT, SpanKind.RECV, SpanKind.SEND):
        summary = attrs.get(attr.PAYLOAD)
    elif span.kind is SpanKind.FAULT:
        summary = attrs.get(attr.FAULT)
    return {"ref": span.ref, "kind": span.kind.value, "name": span.name, "status": span.status.value,
            "error": span.error, "summary": summary}


def handler_error_rows(spans: list[Span], keys: Mapping[str, StepKey], *,
                    recorded: set[StepKey] | None = None, why: Why | None = None,
                    depth: int | None = 12) -> list[dict[str, Any]]:
    """Handler errors as report entries; `new` when `recorded` (the recording's error steps)
    has no error at that step; new ones carry their causal cut (the first 20)."""
    found = []
    cuts = 0
    for s in spans:
        if not is_handler_error(s):
            continue
        where = s.attrs.get(attr.CODE)
        new = recorded is not None and keys.get(s.ref) not in recorded
        entry: dict[str, Any] = {"ref": s.ref, "trace": s.trace, "node": s.node, "error": s.error,
                                 "at": where if isinstance(where, str) else "", "new": new}
        if new and why is not None and cuts < 20:
            entry["why"] = cut_rows(why.cut(s, depth=depth))
            cuts += 1
        found.append(entry)
    return sorted(found, key=lambda e: (e["trace"], e["node"], e["ref"]))


def violations_per_trace(invariants: Sequence[Any], spans: list[Span]) -> dict[str, int]:
    """Violations per trace of a run (the counterfactual verdicts compare these)."""
    from edgetrace.replay._invariants import History, check_all

    found: dict[str, int] = {}
    for v in check_all(list(invariants), History(spans)) if invariants else []:
        found[v.trace] = found.get(v.trace, 0) + 1
    return found


def cut_rows(steps: list[CutStep]) -> list[dict[str, Any]]:
    """A cut as report lines: each step as the chain shows it, plus where it ran and why it is there."""
    return [{**step_row(c.span), "node": c.span.node, "trace": c.span.trace, "why": c.reason} for c in steps]


def pair_row(pair: PairCut) -> dict[str, Any]:
    return {"first": pair.first.ref, "second": pair.second.ref, "relation": pair.relation,
            "split": pair.split.ref if pair.split else None, "first_cut": cut_rows(pair.first_cut),
            "lost": cut_rows(pair.lost)}


def decision_rows(spans: list[Any]) -> list[dict[str, Any]]:
    found = []
    for s in spans:
        if s.kind is SpanKind.DECIDE:
            found.append({"node": s.node, "step": "decide", "name": s.name,
                          "value": s.attrs.get(attr.DECISION), "error": s.error})
        elif s.kind is SpanKind.ACT:
            found.append({"node": s.node, "step": "act", "name": s.name, "value": s.attrs.get(attr.ACT_ARGS),
                          "error": s.error})
    return found
