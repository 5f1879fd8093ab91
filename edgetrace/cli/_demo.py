"""The incident, end to end: record a live fleet, replay it faithfully, break it with the
latency that fired the sprayer, prove the fixed policy holds — and print the commands to
look closer. `edgetrace demo swarm` tells the peer-to-peer drone story instead."""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from edgetrace import _attrs as attr
from edgetrace._errors import UsageError

EXAMPLES = """\
edgetrace demo
edgetrace demo swarm --out /tmp/demo
edgetrace demo --json"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", default="agri", choices=["agri", "swarm"], help="which story (default agri)")
    p.add_argument("--out", default="edgetrace-demo", metavar="DIR", help="where sessions go (default ./edgetrace-demo)")
    p.add_argument("--seed", type=int, default=0, help="seed for the recording and replays")
    p.add_argument("--tui", action="store_true", help="open the explorer on the result at the end")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary instead")


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


class _Out:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, text: str = "") -> None:
        if not self.quiet:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def _chain_lines(report: Any, violation: Any) -> list[str]:
    lines = []
    for step in report.violation_chains.get(violation.span, []):
        kind, summary = step["kind"], step.get("summary")
        if kind == "input" and isinstance(summary, dict):
            text = f"camera frame: \"{summary.get('caption', '')}\""
        elif kind == "infer" and isinstance(summary, dict):
            text = f"model says {summary.get('type')} (confidence {summary.get('confidence')})"
        elif kind in ("state.put", "state.get") and isinstance(summary, dict):
            text = f"{kind} {summary.get('key')} sent to the hub"
        elif kind == "fault":
            text = f"injected: {summary}"
        elif kind == "recv" and step.get("error"):
            text = f"{step['name']}: {step['error']}"
        elif kind == "recv" and isinstance(summary, dict) and "cell" in summary:
            text = f"hazard report for {summary['cell']} received from {summary.get('by', '?')}"
        elif kind == "decide" and isinstance(summary, dict):
            text = f"{step['name']} decides {summary.get('decision')} (rules fired: {', '.join(summary.get('fired') or []) or '-'})"
        elif kind == "act":
            text = f"ACT {step['name']} {summary}"
        else:
            text = f"{kind} {step['name']}" + (f" {summary}" if summary not in (None, "", {}) else "")
        lines.append(f"       {step['ref']:<15} {text}")
    return lines


def run(args: argparse.Namespace) -> int:
    from edgetrace.agents._fleet import record
    from edgetrace.agents._scenario import load_scenario
    from edgetrace.cli._progress import progress_bar
    from edgetrace.replay import replay_session

    out = _Out(args.json)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    scenario = load_scenario(args.scenario)
    story = _STORIES[args.scenario]
    started = time.monotonic()
    recorded = folder / f"{args.scenario}-{story['profile']}.ets"
    broken = folder / f"{args.scenario}-{story['tag']}.ets"
    fixed = folder / f"{args.scenario}-fixed.ets"
    summary: dict[str, Any] = {"scenario": args.scenario, "sessions": {}}

    out(f"edgetrace demo — {story['title']}")
    out("─" * 78)
    out(f"1. RECORD  a live session on the `{story['profile']}` profile: {story['who']} as separate")
    out("            processes on loopback, real TCP, links emulated per the profile")
    with progress_bar("recording", enabled=not args.json) as update:
        rec = record(scenario, recorded, profile=story["profile"], seed=args.seed, progress=update)
    out(f"            {rec.spans} spans from {len(rec.nodes)} nodes, {rec.inputs} inputs, in {rec.wall_s:.1f}s"
        f" → {recorded}")
    if rec.agent_failures:
        for failure in rec.agent_failures:
            out(f"            warning: agent {failure}")
    summary["sessions"]["recorded"] = str(recorded)
    summary["record"] = {"spans": rec.spans, "inputs": rec.inputs, "wall_seconds": round(rec.wall_s, 1)}

    faithful, _, _ = replay_session(recorded, seed=args.seed)
    ok_faithful = faithful.fidelity == 1.0 and not faithful.violations
    out("")
    out(f"2. REPLAY  faithfully, in virtual time: {faithful.steps_matched}/{faithful.steps_recorded} recorded steps "
        f"reproduced ({faithful.fidelity:.1%})")
    out("            " + ("no invariant violated ✓" if not faithful.violations
                          else f"{len(faithful.violations)} violation(s) in the recording itself"))
    summary["faithful"] = {"fidelity": faithful.fidelity, "violations": len(faithful.violations)}

    fault_args = story["faults"](scenario)
    report, replayer, run_ = replay_session(recorded, seed=args.seed, **fault_args)
    replayer.save(run_, report, broken)
    out("")
    out(f"3. BREAK   the same session, {story['fault_text']}")
    for spec in report.faults:
        out(f"            fault: {spec}")
    if report.violations:
        first = report.violations[0]
        out(f"            ✗ {first.invariant} VIOLATED {len(report.violations)} time(s); the first, trace {first.trace}:")
        for line in _chain_lines(report, first):
            out(line)
        out(f"            {story['moral']}")
    else:
        out("            no violation found (unexpected: the fault should have exposed the bug)")
    summary["broken"] = {"violations": len(report.violations), "faults": report.faults, "session": str(broken)}

    ok_fixed = True
    if story.get("fix"):
        fix_args = story["fix"](scenario)
        fixed_report, replayer2, run2 = replay_session(recorded, seed=args.seed, **fault_args, **fix_args)
        replayer2.save(run2, fixed_report, fixed)
        ok_fixed = not fixed_report.violations
        decisions = sorted({str(d.fields.get(attr.DECISION, (None, None))[1]) for d in fixed_report.divergences
                            if d.key[2] == "decide" and attr.DECISION in d.fields})
        out("")
        out(f"4. FIX     same faults, {story['fix_text']}")
        out("            " + ("no invariant violated ✓" if ok_fixed else
                             f"✗ still {len(fixed_report.violations)} violation(s)")
            + (f" — where the state was late, the tractors now decide: {', '.join(decisions)}" if decisions else ""))
        if fixed_report.counterfactual is not None:  # the same plan without the fix, trace by trace
            out(f"            against the unfixed policy: {fixed_report.counterfactual['summary']}")
        summary["fixed"] = {"violations": len(fixed_report.violations), "session": str(fixed)}

    explorer = importlib.util.find_spec("edgetrace.cli._explore") is not None
    out("")
    out("5. LOOK CLOSER")
    if explorer:
        out(f"     edgetrace explore {_q(recorded)} --against {_q(broken)}")
    out(f"     edgetrace show {_q(recorded)} --trace {report.violations[0].trace if report.violations else '<ID>'}")
    out(f"     edgetrace replay {_q(recorded)}")
    out(f"     edgetrace replay {_q(recorded)} {story['cli'](scenario)}")
    if story.get("fix_cli"):
        out(f"     edgetrace replay {_q(recorded)} {story['cli'](scenario)} {story['fix_cli'](scenario)}")
    out(f"     edgetrace diff {_q(recorded)} {_q(broken)}")
    out("")
    expected = ok_faithful and bool(report.violations) and ok_fixed
    out(f"done in {time.monotonic() - started:.1f}s" + ("" if expected else " — some outcome was not as expected"))
    summary["ok"] = expected
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    if args.tui:
        if not explorer:
            raise UsageError("the explorer (edgetrace explore) is not part of this build yet")
        from edgetrace.cli import main

        return main(["explore", str(recorded), "--against", str(broken)])
    return 0 if expected else 1


def _agri_faults(scenario: Any) -> dict[str, Any]:
    return {"fault_files": [scenario.fault_plan("state-latency")]}


def _agri_fix(scenario: Any) -> dict[str, Any]:
    return {"policies": [f"spray_policy={scenario.policy_file('spray_policy_fixed')}"]}


_SWARM_FAULTS = ["latency(topic=hazard, delay=700ms)", "model(name=hazard, fault=slow, delay=300ms)"]

_STORIES: dict[str, dict[str, Any]] = {
    "agri": {
        "title": "the sprayer that fired with no weed in sight (8 tractors, 1 regional hub)",
        "who": "the hub and 8 tractors",
        "profile": "good",
        "tag": "state-latency",
        "faults": _agri_faults,
        "fault_text": "with state round trips to the hub 2 s slower (faults/state-latency.toml)",
        "moral": "the state write to the hub timed out, the policy fell back to its scheduled-pass rule, "
                 "and the\n            default sprayed — with no weed in the camera frame.",
        "fix": _agri_fix,
        "fix_text": "with the fixed policy (spray_policy_fixed.rego: spray only on a confident weed, abort on timeout)",
        "cli": lambda s: f"--faults {_q(s.fault_plan('state-latency'))}",
        "fix_cli": lambda s: f"--policy spray_policy={_q(s.policy_file('spray_policy_fixed'))}",
    },
    "swarm": {
        "title": "survey drones that gossip hazards peer to peer (6 drones, no hub)",
        "who": "6 drones",
        "profile": "good",
        "tag": "hazard-race",
        "faults": lambda s: {"faults": _SWARM_FAULTS},
        "fault_text": "with hazard reports 700 ms late and the hazard model 300 ms slower",
        "moral": "the hazard report reached the drone while its model was running; the route was checked "
                 "against\n            a snapshot taken before — the drone flew into a cell it already knew was hazardous.",
        "cli": lambda s: " ".join(f"--fault {_q(f)}" for f in _SWARM_FAULTS),
    },
}
