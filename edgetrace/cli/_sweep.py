"""Replay one session under many seeds of a fault plan, list the seeds that break an
invariant, and shrink the plan to the faults that matter for the first failing seed.

Exit 1 when any seed violates an invariant, 0 when none does, 2 on bad input."""

from __future__ import annotations

import argparse
import sys

from edgetrace._errors import UsageError
from edgetrace.cli._progress import progress_bar


def _seeds(args: argparse.Namespace) -> list[int]:
    if args.seed_range:
        lo, sep, hi = args.seed_range.partition(":")
        if not sep or not lo.strip().isdigit() or not hi.strip().isdigit() or int(hi) <= int(lo):
            raise UsageError(f"bad --seed-range {args.seed_range!r}: expected START:END with END > START, e.g. 0:50")
        return list(range(int(lo), int(hi)))
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    return list(range(args.seeds))


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="recorded session (.ets)")
    p.add_argument("--app", metavar="REF",
                   help="the app to re-run: MODULE:ATTR, FILE.py:ATTR or an installed app's name (a session "
                   "file never picks code to run; see docs/security.md)")
    p.add_argument("--trust-session", action="store_true",
                   help="run the app the session names (its app_ref), trusting the file")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC", help="fault spec (repeatable)")
    p.add_argument("--faults", action="append", default=[], metavar="FILE", help="TOML fault-plan file")
    p.add_argument("--seeds", type=int, default=20, metavar="N", help="seeds 0..N-1 (default 20)")
    p.add_argument("--seed-range", metavar="START:END", help="seeds START..END-1 instead of --seeds")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="swap a model file")
    p.add_argument("--policy", action="append", default=[], metavar="NAME=PATH", help="swap a policy file")
    p.add_argument("--check", action="append", default=[], metavar="INVARIANT", help="extra invariant")
    p.add_argument("--jobs", type=int, default=0, metavar="N", help="worker processes (default: one per core)")
    p.add_argument("--no-minimise", action="store_true", help="do not shrink the plan of the first failure")
    p.add_argument("--json", action="store_true", help="print the sweep report as JSON")


def run(args: argparse.Namespace) -> int:
    import msgspec

    from edgetrace.replay._sweep import sweep

    seeds = _seeds(args)
    if args.jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per core) or more, got {args.jobs}")
    with progress_bar("sweeping seeds", enabled=not args.json) as update:
        report = sweep(args.session, seeds, faults=args.fault, fault_files=args.faults, models=args.model,
                       policies=args.policy, checks=args.check, jobs=args.jobs or None,
                       do_minimise=not args.no_minimise, progress=update, app=args.app or "",
                       trust_session=args.trust_session)
    if args.json:
        data = msgspec.json.encode(report.to_dict(), order="deterministic")
        sys.stdout.buffer.write(msgspec.json.format(data, indent=2) + b"\n")
    else:
        sys.stdout.write(report.render_text())
    return report.exit_code()
