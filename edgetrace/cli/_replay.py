"""Replay a recorded session deterministically in virtual time, optionally with faults,
swapped models or policies, and report divergences and invariant violations.

Exit 1 when an invariant is violated or when a faithful replay (no faults, no swaps)
diverges from its recording; under faults or swaps divergences are the answer and only
fail with --fail-on-divergence."""

from __future__ import annotations

import argparse
import shlex
import sys

from edgetrace._errors import UsageError
from edgetrace._text import printable_text
from edgetrace.cli._progress import progress_bar

EXAMPLES = """\
edgetrace replay run.ets
edgetrace replay run.ets --fault 'latency(op=state.*, delay=2s)'
edgetrace replay run.ets --policy spray_policy=fixed.rego --save fixed.ets --json
edgetrace replay run.ets --seed 3 --fault 'drop(p=0.05)' --occurrences 4,17
edgetrace replay run.ets --reexecute all"""


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
    p.add_argument("--reexecute", choices=["changed", "all"], default="changed",
                   help="which model and policy steps run again: 'changed' (default) serves steps whose "
                   "artifact and inputs are byte-identical to the recording's from it; 'all' runs every one")
    p.add_argument("--verify-memo", type=int, default=None, metavar="N",
                   help="re-execute N steps served from the recording and fail on a mismatch "
                   "(default: 8 in a faithful replay, 0 under faults or swaps)")
    p.add_argument("--occurrences", metavar="N,N,...",
                   help="apply only these occurrences of the plan's faults (numbered as the plan applies "
                   "them under this seed; a sweep's minimisation prints them)")
    p.add_argument("--why-depth", type=int, default=12, metavar="N",
                   help="how many causal hops a finding's cut walks back across nodes (default 12)")
    p.add_argument("--why", choices=["all"], help="'all': the whole causal past of each finding, unpruned")
    p.add_argument("--confirm-races", action="store_true",
                   help="replay each race (concurrent accesses of one key) the other way round and report "
                        "whether any decision, act or invariant changes")
    p.add_argument("--mode", choices=["closed-loop", "teacher-forced"], default="closed-loop",
                   help="with --model/--policy: let the substitute's answers flow downstream (closed-loop, "
                        "compared with a baseline replay) or feed it the recorded inputs at every step and "
                        "only compare its answers (teacher-forced)")
    p.add_argument("--from", dest="start", metavar="CUT",
                   help="replay only what follows a consistent cut of the session's state snapshots: a cut id "
                        "(c12; list them with edgetrace show SESSION --cuts), a virtual time (59m: the latest "
                        "cut at or before it) or a span ref (node:seq: the latest cut before it)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--save", metavar="OUT", help="write the replayed run as a session (for explore --against)")
    p.add_argument("--salvage", action="store_true",
                   help="skip damaged frames of the session (with a warning that counts what is missing)")


def occurrence_numbers(text: str | None) -> list[int] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or not all(t.isdigit() for t in items):
        raise UsageError(f"bad --occurrences {text!r}: expected numbers separated by commas, e.g. 3,17")
    return [int(t) for t in items]


def run(args: argparse.Namespace) -> int:
    from edgetrace.cli._show import open_session
    from edgetrace.replay import Replayer, replay_session
    from edgetrace.replay._memo import MemoMismatchError

    if args.verify_memo is not None and args.verify_memo < 0:
        raise UsageError(f"--verify-memo must be 0 or more, got {args.verify_memo}")
    loaded = Replayer(open_session(args.session, args.salvage), app=args.app, trust_session=args.trust_session)
    try:
        with progress_bar("replaying", enabled=not args.json) as update:
            report, replayer, run_ = replay_session(
                args.session, faults=args.fault, fault_files=args.faults, seed=args.seed, models=args.model,
                policies=args.policy, checks=args.check, default_checks=not args.no_default_checks,
                horizon_s=args.horizon, progress=update, reexecute=args.reexecute == "all",
                verify_memo=args.verify_memo, occurrences=occurrence_numbers(args.occurrences),
                why_depth=None if args.why == "all" else max(1, args.why_depth),
                confirm_races=args.confirm_races, mode=args.mode, replayer=loaded, start=args.start,
            )
    except MemoMismatchError as exc:  # the replay diverged from its recording, loudly
        print(f"edgetrace: replay diverged: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if args.save:
        replayer.save(run_, report, args.save)
    if args.json:
        sys.stdout.buffer.write(report.to_json())
    else:
        sys.stdout.write(printable_text(report.render_text()))  # session text: no raw escapes
        if args.save:
            sys.stdout.write(f"\nsaved the replayed run: {args.save}\n"
                             f"  edgetrace explore {shlex.quote(str(args.session))} --against "
                             f"{shlex.quote(str(args.save))}\n")
        if report.violations:  # the first finding's cut, as the explorer draws it
            ref = report.violations[0].span
            if args.save:
                sys.stdout.write(f"  edgetrace explore {shlex.quote(str(args.save))} --why {shlex.quote(ref)}\n")
            else:
                sys.stdout.write(f"  to see {printable_text(ref)}'s causal cut in the explorer: add --save OUT, "
                                 f"then edgetrace explore OUT --why {shlex.quote(ref)}\n")
    return report.exit_code(fail_on_divergence=args.fail_on_divergence)
