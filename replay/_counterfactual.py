"""Counterfactual replay: what a swapped model or policy would have done, two ways.

- **closed-loop** (the default): the substitute's outputs flow downstream — the replay runs with
  it, and each trace is compared with a baseline replay of the same plan and seed without it.
  Verdict per trace: *fixed* (the baseline broke an invariant there, the substitute does not),
  *still failing*, *newly failing*, *changed* (different decisions or acts, no violation either
  way) or *unchanged*.
- **teacher-forced**: the replay follows the recording, and at every step of a substituted model
  or policy the substitute is *also* run, on the very input the recorded step had; its answer is
  compared and thrown away, so one step's change never disturbs the next. Verdict per trace:
  *changed* or *unchanged*, with each step's recorded and substitute answer — what the new
  policy decides on the situations the old one met, not on the situations it would create.

For models, a step's change is said in numbers: the largest absolute difference of numeric
outputs, and whether the arg-max (or top-3) of a vector output moved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _attrs as attr
from edgetrace._records import Span, SpanKind
from edgetrace._stepkey import StepKey
from edgetrace.agents._models import ModelResult, ModelRunner
from edgetrace.agents._rules import Decision, RuleEngine

__all__ = ["MODES", "ShadowLog", "closed_loop", "output_change", "teacher_forced"]

MODES = ("closed-loop", "teacher-forced")


@dataclass
class ShadowLog:
    """Teacher-forced comparisons, step by step: (key, kind, name, recorded answer, substitute's)."""

    shadows: dict[tuple[str, str], ModelRunner | RuleEngine] = field(default_factory=dict)
    steps: list[tuple[StepKey, str, str, Any, Any]] = field(default_factory=list)

    def model(self, name: str, key: StepKey, inputs: Any, result: ModelResult) -> None:
        shadow = self.shadows.get(("model", name))
        if isinstance(shadow, ModelRunner):
            try:
                other: Any = shadow.run(inputs).output
            except Exception as exc:  # the substitute's failure is part of the answer
                other = {"error": f"{type(exc).__name__}: {exc}"}
            self.steps.append((key, "infer", name, result.output, other))

    def policy(self, name: str, key: StepKey, document: Any, decision: Decision) -> None:
        shadow = self.shadows.get(("policy", name))
        if isinstance(shadow, RuleEngine):
            try:
                other: Any = shadow.evaluate(document).value
            except Exception as exc:
                other = {"error": f"{type(exc).__name__}: {exc}"}
            self.steps.append((key, "decide", name, decision.value, other))


def _numbers(value: Any) -> list[float]:
    """The numeric leaves of an output, flattened (tensors, lists, dicts of them)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, Mapping):
        return [x for k in sorted(value, key=str) for x in _numbers(value[k])]
    if isinstance(value, list | tuple):
        return [x for item in value for x in _numbers(item)]
    tolist = getattr(value, "tolist", None)
    return _numbers(tolist()) if callable(tolist) else []


def output_change(recorded: Any, now: Any) -> dict[str, Any]:
    """How a model's output moved: equal?, max |Δ| of numbers, arg-max / top-3 of a vector."""
    found: dict[str, Any] = {"changed": _plain(recorded) != _plain(now)}
    a, b = _numbers(recorded), _numbers(now)
    if a and len(a) == len(b):
        found["max_abs_delta"] = max(abs(x - y) for x, y in zip(a, b, strict=True))
        if len(a) > 1 and all(math.isfinite(x) for x in a + b):
            ra, rb = _ranking(a), _ranking(b)
            found["argmax_changed"] = ra[0] != rb[0]
            found["top3_changed"] = set(ra[:3]) != set(rb[:3])
    return found


def _ranking(xs: list[float]) -> list[int]:
    return sorted(range(len(xs)), key=lambda i: (-xs[i], i))


def _plain(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _outcomes(spans: list[Span]) -> dict[str, list[tuple[str, str, str, Any]]]:
    """Per trace: its decisions and acts, in node and seq order."""
    found: dict[str, list[tuple[str, str, str, Any]]] = {}
    for s in sorted(spans, key=lambda s: (s.node, s.seq)):
        if s.kind is SpanKind.DECIDE:
            found.setdefault(s.trace, []).append((s.node, "decide", s.name, s.attrs.get(attr.DECISION)))
        elif s.kind is SpanKind.ACT:
            found.setdefault(s.trace, []).append((s.node, "act", s.name, s.attrs.get(attr.ACT_ARGS)))
    return found


def closed_loop(baseline: list[Span], run: list[Span], base_violations: Mapping[str, int],
                violations: Mapping[str, int]) -> dict[str, Any]:
    """Per-trace verdicts of a substituted replay against its baseline (violations per trace given)."""
    before, after = _outcomes(baseline), _outcomes(run)
    traces = sorted(set(before) | set(after) | set(base_violations) | set(violations))
    entries = []
    counts = {"fixed": 0, "still failing": 0, "newly failing": 0, "changed": 0, "unchanged": 0}
    for trace in traces:
        was, now = base_violations.get(trace, 0), violations.get(trace, 0)
        differs = before.get(trace, []) != after.get(trace, [])
        verdict = ("fixed" if was and not now else "still failing" if was and now else
                   "newly failing" if now else "changed" if differs else "unchanged")
        counts[verdict] += 1
        if verdict != "unchanged":
            entries.append({"trace": trace, "verdict": verdict,
                            "recorded": [_said(o) for o in before.get(trace, [])],
                            "counterfactual": [_said(o) for o in after.get(trace, [])]})
    changed = sum(1 for e in entries if e["recorded"] != e["counterfactual"])
    return {"mode": "closed-loop", "traces_total": len(traces), "traces_changed": changed, "verdicts": counts,
            "summary": f"decisions or acts changed in {changed} of {len(traces)} traces; "
                       f"{counts['fixed']} violation(s) fixed, {counts['newly failing']} new, "
                       f"{counts['still failing']} still failing",
            "traces": entries}


def teacher_forced(log: ShadowLog, traces_total: int) -> dict[str, Any]:
    steps: dict[str, list[dict[str, Any]]] = {}
    for key, kind, name, recorded, other in sorted(log.steps, key=lambda s: s[0]):
        entry: dict[str, Any] = {"node": key[1], "step": kind, "name": name, "occurrence": key[4],
                                 "recorded": _plain(recorded), "counterfactual": _plain(other)}
        if kind == "infer":
            entry["change"] = output_change(recorded, other)
            if not entry["change"]["changed"]:
                continue
        elif _plain(recorded) == _plain(other):
            continue
        steps.setdefault(key[0], []).append(entry)
    changed = len(steps)
    return {"mode": "teacher-forced", "traces_total": traces_total, "traces_changed": changed,
            "steps_compared": len(log.steps),
            "summary": f"decisions changed in {changed} of {traces_total} traces "
                       f"({sum(len(v) for v in steps.values())} of {len(log.steps)} substituted steps answer "
                       "differently on the recorded inputs; no downstream effect)",
            "traces": [{"trace": t, "verdict": "changed", "steps": v} for t, v in sorted(steps.items())]}


def _said(outcome: tuple[str, str, str, Any]) -> str:
    _node, step, name, value = outcome
    return f"{name}→{value}" if step == "decide" else f"act {name} {value}"
