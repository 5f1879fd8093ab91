"""Replay a recorded session deterministically in virtual time, optionally with faults,
swapped models or policies, and report divergences and invariant violations.

Exit 1 when an invariant is violated or when a faithful replay (no faults, no swaps)
diverges from its recording; under faults or swaps divergences are the answer and only
fail with --fail-on-divergence."""

from __future__ import annotations

import argparse
import sys

from edgetrace.cli._progress import progress_bar


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="recorded session (.ets)")
    p.add_argument("--app", metavar="REF",
                   help="the app to re-run: MODULE:ATTR, FILE.py:ATTR or an installed app's name (a session "
                   "file never picks code to run; see docs/security.md)")
    p.add_argument("--trust-session", action="store_true",
                   help="run the app the session names (its app_ref), trusting the file")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="fault spec, e.g. 'latency(op=state.put, delay=2s)' (repeatable; see docs/faults.md)")
    p.add_argument("--faults", action="append", default=[], metavar="FILE", help="TOML fault-plan file")
    p.add_argument("--seed", type=int, default=None, help="seed for fault draws and new timings "
                   "(default: the plan's seed, else the session's)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="swap a model file")
    p.add_argument("--policy", action="append", default=[], metavar="NAME=PATH", help="swap a policy file")
    p.add_argument("--check", action="append", default=[], metavar="INVARIANT",
                   help="invariant name or expression to check (default: those the app declares)")
    p.add_argument("--no-default-checks", action="store_true", help="check only the --check invariants")
    p.add_argument("--fail-on-divergence", action="store_true",
                   help="exit 1 on divergence even under faults or substitutions")
    p.add_argument("--horizon", type=float, default=30.0, metavar="SECONDS",
                   help="virtual seconds to keep running after the last recorded step (default 30)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--save", metavar="OUT", help="write the replayed run as a session (for explore --against)")
    p.add_argument("--salvage", action="store_true",
                   help="skip damaged frames of the session (with a warning that counts what is missing)")


def run(args: argparse.Namespace) -> int:
    from edgetrace.cli._show import open_session
    from edgetrace.replay import Replayer, replay_session

    loaded = Replayer(open_session(args.session, args.salvage), app=args.app, trust_session=args.trust_session)
    with progress_bar("replaying", enabled=not args.json) as update:
        report, replayer, run_ = replay_session(
            args.session, faults=args.fault, fault_files=args.faults, seed=args.seed, models=args.model,
            policies=args.policy, checks=args.check, default_checks=not args.no_default_checks,
            horizon_s=args.horizon, progress=update, replayer=loaded,
        )
    if args.save:
        replayer.save(run_, report, args.save)
    if args.json:
        sys.stdout.buffer.write(report.to_json())
    else:
        sys.stdout.write(report.render_text())
        if args.save:
            sys.stdout.write(f"\nsaved the replayed run: {args.save}\n"
                             f"  edgetrace explore {args.session} --against {args.save}\n")
    return report.exit_code(fail_on_divergence=args.fail_on_divergence)
