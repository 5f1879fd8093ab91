"""Replay one session under many seeds of a fault plan, list the seeds that break an
invariant, and find the cause: the smallest plan that still fails across the failing seeds,
and the injected events of it (this drop, that delay) that still break the invariant.

Seeds run in a local process pool (--executor process, the default), in this process
(inline) or on a Ray cluster (--executor ray [--address ADDR]; pip install 'edgetrace[ray]').

Exit 1 when any seed violates an invariant, 0 when none does, 2 on bad input."""

from __future__ import annotations

import argparse
import sys

from edgetrace._errors import UsageError
from edgetrace._text import printable_text
from edgetrace.cli._progress import progress_bar

EXAMPLES = """\
edgetrace sweep run.ets --fault 'drop(p=0.05)' --seeds 50
edgetrace sweep run.ets --faults plan.toml --jobs 2 --json
edgetrace sweep run.ets --fault 'drop(p=0.05)' --seeds 100000 --executor ray --address ray://head:10001"""


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
    p.add_argument("--executor", choices=["process", "inline", "ray"], default="process",
                   help="where seeds run: a local process pool (default), this process, or Ray")
    p.add_argument("--address", metavar="ADDR",
                   help="the Ray cluster to use with --executor ray (e.g. ray://head:10001; default: a local one)")
    p.add_argument("--reexecute", choices=["changed", "all"], default="changed",
                   help="which model and policy steps run again ('changed': those not byte-identical to the "
                   "recording's; 'all')")
    p.add_argument("--verify-memo", type=int, default=0, metavar="N",
                   help="per replay, re-execute N steps served from the recording and fail on a mismatch")
    p.add_argument("--minimise-seeds", type=int, default=8, metavar="N",
                   help="judge smaller plans on the first N failing seeds (default 8)")
    p.add_argument("--no-minimise", action="store_true", help="do not look for the cause of the failures")
    p.add_argument("--from", dest="start", metavar="CUT",
                   help="replay every seed from a consistent cut of the session's snapshots (a cut id, a "
                        "virtual time or a span ref, as edgetrace replay --from)")
    p.add_argument("--json", action="store_true", help="print the sweep report as JSON")


def run(args: argparse.Namespace) -> int:
    import msgspec

    from edgetrace.replay._memo import MemoMismatchError
    from edgetrace.replay._sweep import sweep

    seeds = _seeds(args)
    if args.jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per core) or more, got {args.jobs}")
    if args.verify_memo < 0 or args.minimise_seeds < 1:
        raise UsageError("--verify-memo must be 0 or more and --minimise-seeds at least 1")
    try:
        with progress_bar("sweeping seeds", enabled=not args.json) as update:
            report = sweep(args.session, seeds, faults=args.fault, fault_files=args.faults, models=args.model,
                           policies=args.policy, checks=args.check, jobs=args.jobs or None,
                           do_minimise=not args.no_minimise, progress=update, executor=args.executor,
                           address=args.address, reexecute=args.reexecute == "all",
                           verify_memo=args.verify_memo, minimise_seeds=args.minimise_seeds,
                           app=args.app or "", trust_session=args.trust_session, start=args.start or "")
    except MemoMismatchError as exc:
        print(f"edgetrace: replay diverged: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if args.json:
        data = msgspec.json.encode(report.to_dict(), order="deterministic")
        sys.stdout.buffer.write(msgspec.json.format(data, indent=2) + b"\n")
    else:
        sys.stdout.write(printable_text(report.render_text()))  # session text: no raw escapes
    return report.exit_code()
