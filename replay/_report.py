"""Replay reports: text for the person on call, JSON for machines, byte-identical per input.

The report holds no wall-clock time, no absolute timing of the machine that ran it, and
every collection in it is sorted, so two runs of the same session, plan and seed produce
the same bytes on any machine and any PYTHONHASHSEED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from edgetrace._version import __version__
from edgetrace.replay._divergence import Divergence

__all__ = ["ReplayReport", "TraceReport"]


@dataclass
class TraceReport:
    """The story of one trace that diverged: where first, what led there, what changed."""

    trace: str
    first: Divergence
    count: int = 0
    chain: list[dict[str, Any]] = field(default_factory=list)
    why: list[dict[str, Any]] = field(default_factory=list)  # the causal cut of the first divergence
    recorded_decisions: list[dict[str, Any]] = field(default_factory=list)
    replayed_decisions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace": self.trace,
            "divergences": self.count,
            "first_divergence": self.first.to_dict(),
            "causal_chain": self.chain,
            "why": self.why,
            "decisions": {"recorded": self.recorded_decisions, "replayed": self.replayed_decisions},
        }


@dataclass
class ReplayReport:
    session: str
    app: str
    seed: int
    faults: list[str]
    models: dict[str, str]
    policies: dict[str, str]
    steps_recorded: int
    steps_replayed: int
    steps_matched: int
    faults_applied: int
    virtual_ns: int
    divergences: list[Divergence]
    traces: list[TraceReport]
    violations: list[Any]
    violation_chains: dict[str, list[dict[str, Any]]]
    invariants: list[tuple[str, str]] = field(default_factory=list)  # (name, description) checked
    fault_counts: list[tuple[str, int]] = field(default_factory=list)  # (spec, times applied), plan order
    handler_errors: list[dict[str, Any]] = field(default_factory=list)  # in the replay, report order
    recorded_errors: list[dict[str, Any]] = field(default_factory=list)  # in the recording
    nondeterminism: list[dict[str, Any]] = field(default_factory=list)  # calls caught at app lines
    violation_cuts: dict[str, dict[str, Any]] = field(default_factory=dict)  # span -> {"cut", "pair"?}
    coverage: list[tuple[str, str, int]] = field(default_factory=list)  # (name, mode, times reached)
    races: list[dict[str, Any]] = field(default_factory=list)  # concurrent accesses of one key
    counterfactual: dict[str, Any] | None = None  # with swapped models/policies: the verdicts
    cut: dict[str, Any] | None = None  # replayed from a consistent cut (`--from`): which one

    @property
    def faithful(self) -> bool:
        """No faults and no substitutions: the replay must reproduce the recording."""
        return not self.faults and not self.models and not self.policies

    @property
    def fidelity(self) -> float:
        return 1.0 if not self.steps_recorded else self.steps_matched / self.steps_recorded

    def exit_code(self, *, fail_on_divergence: bool = False) -> int:
        if self.violations:
            return 1
        if self.divergences and (self.faithful or fail_on_divergence):
            return 1
        return 0

    @property
    def verdict(self) -> str:
        if self.violations:
            return "violation"
        if self.divergences:
            return "diverged" if self.faithful else "changed"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "edgetrace": __version__,
            "session": self.session,
            "app": self.app,
            "seed": self.seed,
            "mode": "faithful" if self.faithful else "what-if",
            **({"from_cut": self.cut} if self.cut is not None else {}),
            "faults": list(self.faults),
            "substitutions": {"models": dict(sorted(self.models.items())),
                              "policies": dict(sorted(self.policies.items()))},
            "steps": {"recorded": self.steps_recorded, "replayed": self.steps_replayed,
                      "matched": self.steps_matched},
            "fidelity": round(self.fidelity, 6),
            "faults_applied": self.faults_applied,
            "fault_counts": [{"fault": spec, "applied": n} for spec, n in self.fault_counts],
            "virtual_seconds": round(self.virtual_ns / 1e9, 6),
            "verdict": self.verdict,
            "divergence_count": len(self.divergences),
            "traces": [t.to_dict() for t in self.traces],
            "invariants": [
                {"name": name, "description": text,
                 "violations": sum(1 for v in self.violations if v.invariant == name)}
                for name, text in self.invariants
            ],
            "violations": [
                {**v.to_dict(), "causal_chain": self.violation_chains.get(v.span, []),
                 **({"why": self.violation_cuts[v.span]["cut"]} if v.span in self.violation_cuts else {}),
                 **({"pair": self.violation_cuts[v.span]["pair"]} if "pair" in self.violation_cuts.get(v.span, {})
                    else {})}
                for v in self.violations
            ],
            "coverage": [{"name": name, "mode": mode, "reached": n} for name, mode, n in self.coverage],
            "races": self.races,
            **({"counterfactual": self.counterfactual} if self.counterfactual is not None else {}),
            "nondeterminism": self.nondeterminism,
            "handler_errors": {"replayed": self.handler_errors, "recorded": len(self.recorded_errors),
                               "new": sum(1 for e in self.handler_errors if e["new"])},
        }

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self.to_dict(), order="deterministic"), indent=2) + b"\n"

    # --- text -----------------------------------------------------------------------------

    def render_text(self, *, max_traces: int = 5) -> str:
        out: list[str] = []
        mode = "faithful replay" if self.faithful else "what-if replay"
        out.append(f"{mode} of {self.session} (app {self.app}, seed {self.seed})")
        if self.cut is not None:
            out.append(f"  from    cut {self.cut['id']} at {self.cut['at']}: state restored from "
                       f"{sum(1 for ref in self.cut['nodes'].values() if ref)} snapshot(s); this report "
                       "covers the steps after it")
        applied = dict(self.fault_counts)
        for spec in self.faults:
            n = applied.get(spec)
            note = "" if n is None else (f"  applied {n}×" if n else "  applied 0 times: it touched nothing in this run")
            out.append(f"  fault   {spec}{note}")
        for name, sha in self.models.items():
            out.append(f"  model   {name} ← {sha[:12]}")
        for name, sha in self.policies.items():
            out.append(f"  policy  {name} ← {sha[:12]}")
        out.append(
            f"  steps   {self.steps_matched}/{self.steps_recorded} recorded steps reproduced "
            f"({self.fidelity:.1%}); {self.steps_replayed} replayed; "
            f"{self.virtual_ns / 1e9:.1f} virtual s"
        )
        if self.faults:
            out.append(f"  faults  applied {self.faults_applied} times")
        if self.recorded_errors:
            shown = _error_groups(self.recorded_errors)
            out.append(f"  errors  the recording itself has {len(self.recorded_errors)} handler error(s): {shown}")
        if self.invariants:
            reached = {name: n for name, mode, n in self.coverage if mode != "unreachable"}
            counts = {name: sum(1 for v in self.violations if v.invariant == name) for name, _ in self.invariants}
            shown = ", ".join(
                f"{name} reached {reached[name]}×" if name in reached
                else f"{name} {'✓' if not n else f'✗ {n}'}" for name, n in counts.items())
            out.append(f"  checked {shown}")
        else:
            out.append("  checked no invariants (the app declares none; add --check EXPR)")
        out.append("")
        if self.counterfactual is not None:
            out.extend(_counterfactual_lines(self.counterfactual))
        if self.violations:
            out.append(f"INVARIANT VIOLATED — {len(self.violations)} violation(s)")
            for v in self.violations[:max_traces]:
                out.append(f"  ✗ {v.invariant}: {v.message}")
                found = self.violation_cuts.get(v.span)
                if found is None:
                    for step in self.violation_chains.get(v.span, []):
                        out.append("      " + _step_line(step))
                    continue
                pair = found.get("pair")
                if pair:
                    out.append(f"    both sides: {pair['first']} and {pair['second']} — {pair['relation']}"
                               + (f"; they split after {pair['split']}" if pair["split"] else ""))
                    out.append(f"    why {pair['first']}:")
                    out.extend("      " + _cut_line(step) for step in pair["first_cut"])
                    out.append(f"    why {pair['second']}:")
                out.extend("      " + _cut_line(step) for step in found["cut"])
                if pair and pair["lost"]:
                    out.append("    what could have ordered them, and was lost:")
                    out.extend("      " + _cut_line(step) for step in pair["lost"])
            if len(self.violations) > max_traces:
                out.append(f"  … and {len(self.violations) - max_traces} more (use --json for all)")
            out.append("")
        if self.nondeterminism:
            total = sum(n["count"] for n in self.nondeterminism)
            out.append(f"NON-DETERMINISM — handler code did {total} thing(s) a replay cannot repeat "
                       "(use ctx.now, ctx.sleep, ctx.rng, ctx.call instead):")
            for found in self.nondeterminism[:max_traces * 2]:
                times = f" ({found['count']}×)" if found["count"] > 1 else ""
                out.append(f"  ✗ {found['call']} at {found['at']}{times}")
            out.append("")
        if self.races:
            out.append(f"RACES — {len(self.races)} pair(s) of concurrent accesses of one key by two nodes:")
            for race in self.races[:max_traces]:
                out.append(f"  ~ {race['description']}")
                if race["confirmed"]:
                    out.append(f"    {race['confirmed']}")
                    out.extend(f"      {change}" for change in race["changes"][:max_traces])
            if not any(r["confirmed"] for r in self.races):
                out.append("  (--confirm-races replays each the other way round and says what changes)")
            out.append("")
        new = [e for e in self.handler_errors if e["new"]]
        if new:
            traces = len({e["trace"] for e in new})
            out.append(f"HANDLER ERRORS — {len(new)} new in this replay, in {traces} trace(s): {_error_groups(new)}")
            for e in new[:max_traces]:
                out.append(f"  ✗ {e['ref']:<16} {e['error']}" + (f"  at {e['at']}" if e["at"] else "")
                           + f"  [trace {e['trace']}]")
            if len(new) > max_traces:
                out.append(f"  … and {len(new) - max_traces} more (use --json for all)")
            out.append("")
        if self.traces:
            label = "DIVERGED from the recording" if self.faithful else "changed from the recording"
            out.append(f"{len(self.traces)} trace(s) {label} ({len(self.divergences)} steps)")
            for t in self.traces[:max_traces]:
                out.append(f"  trace {t.trace}: first divergence — {t.first.describe()}")
                rec = _decision_text(t.recorded_decisions)
                rep = _decision_text(t.replayed_decisions)
                if rec != rep:
                    out.append(f"    recorded: {rec}")
                    out.append(f"    replayed: {rep}")
            if len(self.traces) > max_traces:
                out.append(f"  … and {len(self.traces) - max_traces} more traces (use --json for all)")
        elif not self.violations:
            out.append("no divergence: the replay reproduced every recorded step")
        if not self.violations and not self.traces:
            pass
        elif not self.violations and self.invariants:
            out.append("")
            out.append("no invariant violated")
        return "\n".join(out) + "\n"


def _error_groups(errors: list[dict[str, Any]], limit: int = 3) -> str:
    counts: dict[tuple[str, str], int] = {}
    for e in errors:
        counts[(e["error"], e["at"])] = counts.get((e["error"], e["at"]), 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{what}" + (f" at {at}" if at else "") + (f" ({n}×)" if n > 1 else "") for (what, at), n in top[:limit]]
    return ", ".join(parts) + (f", and {len(top) - limit} more kinds" if len(top) > limit else "")


def _counterfactual_lines(cf: dict[str, Any], shown: int = 100) -> list[str]:
    """The counterfactual first, and every trace it changed (a person scans them; JSON has the rest)."""
    out = [f"COUNTERFACTUAL ({cf['mode']}) — {cf['summary']}"]
    for t in cf["traces"][:shown]:
        if cf["mode"] == "teacher-forced":
            steps = "; ".join(f"{s['name']} on {s['node']}: {s['recorded']} → {s['counterfactual']}"
                              + (f" (max Δ {s['change']['max_abs_delta']:.3g})" if "max_abs_delta" in s.get("change", {})
                                 else "")
                              for s in t["steps"])
            out.append(f"  {t['trace']:<22} changed   {steps}")
        else:
            was = ", ".join(t["recorded"]) or "nothing"
            now = ", ".join(t["counterfactual"]) or "nothing"
            out.append(f"  {t['trace']:<22} {t['verdict']:<13} {was}  →  {now}")
    if len(cf["traces"]) > shown:
        out.append(f"  … {len(cf['traces']) - shown} more changed traces (use --json)")
    out.append("")
    return out


def _cut_line(step: dict[str, Any]) -> str:
    """One line of a causal cut: where it ran, what it did, and why it bears on the finding."""
    summary = step.get("summary")
    text = "" if summary in (None, {}, "") else f" {_short(summary)}"
    err = f"  ✗ {step['error']}" if step.get("error") else ""
    return f"{step['ref']:<16} {step['trace']:<20} {step['kind']:<9} {step['name']}{text}{err}  — {step['why']}"


def _short(value: Any, limit: int = 70) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step_line(step: dict[str, Any]) -> str:
    summary = step.get("summary")
    text = "" if summary in (None, {}, "") else f" {summary}"
    err = f"  ✗ {step['error']}" if step.get("error") else ""
    return f"{step['ref']:<16} {step['kind']:<9} {step['name']}{text}{err}"


def _decision_text(items: list[dict[str, Any]]) -> str:
    if not items:
        return "nothing decided, nothing done"
    parts = []
    for d in items:
        if d["step"] == "decide":
            parts.append(f"{d['name']}→{d['value']}")
        else:
            parts.append(f"act {d['name']}")
    return ", ".join(parts)
