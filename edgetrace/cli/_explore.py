"""Open the terminal trace explorer on a session: the trace list (filters, time ranges, a
duration chart), each trace as a waterfall tree on one time axis for all nodes (clock
offsets estimated from messages) or as space-time, the causal view of every trace around a
span, the fleet's nodes and links, span detail with payloads, and with --against a replayed
session the recorded-vs-replayed diff. --focus opens the causal view on spans given by ref;
--why opens the causal cut of a finding (what bears on it, as replay reports list it).
Without SESSION, pick one from the recent sessions, $EDGETRACE_DATA (default
~/.local/share/edgetrace) or the current directory. A session still being written is
followed live. Press ? inside for every key."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgetrace._errors import UsageError
from edgetrace._records import parse_ref

EXAMPLES = """\
edgetrace explore
edgetrace explore run.ets
edgetrace explore run.ets --against replayed.ets
edgetrace explore run.ets --filter 'kind=act without after(kind=decide)'
edgetrace explore run.ets --focus hub:42 --cut
edgetrace explore replayed.ets --why t-0:17"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", nargs="?", help="session file (.ets); omit to pick one")
    p.add_argument("--against", metavar="REPLAYED",
                   help="a replayed session (edgetrace replay --save) to diff against SESSION")
    p.add_argument("--focus", metavar="REF[,REF...]",
                   help="open the causal view: around one span (NODE:SEQ), or of exactly these spans when "
                        "several are given (the cut of a finding); the first is the focus")
    p.add_argument("--cut", action="store_true", help="with one --focus ref: show only that span, not around it")
    p.add_argument("--why", metavar="REF",
                   help="open the causal cut of the step at REF (a finding: its pruned causal past across nodes "
                        "and traces, the steps a replay report lists under it)")
    p.add_argument("--filter", metavar="QUERY", default="", help="start with this filter (the / box's language)")
    p.add_argument("--salvage", action="store_true",
                   help="skip damaged frames (the status line counts them) instead of refusing the session")
    p.add_argument("--no-follow", action="store_true",
                   help="read the session once; do not follow a writer that is still appending")


def _refs(text: str | None) -> list[str]:
    refs = [r.strip() for r in (text or "").split(",") if r.strip()]
    for ref in refs:
        try:
            parse_ref(ref)
        except ValueError as exc:
            raise UsageError(f"--focus: {exc}") from None
    return refs


def run(args: argparse.Namespace) -> int:
    from edgetrace._session import Session
    from edgetrace.tui._query import parse_query
    from edgetrace.tui._store import TraceStore

    if args.against and not args.session:
        raise UsageError("--against needs SESSION (the recording) as well")
    focus = _refs(args.focus)
    if focus and not args.session:
        raise UsageError("--focus needs SESSION as well")
    if args.cut and not focus:
        raise UsageError("--cut needs --focus REF")
    if args.why and (focus or not args.session):
        raise UsageError("--why needs SESSION, and not --focus as well (it chooses the spans itself)")
    parse_query(args.filter)  # a bad query: exit 2 with where it went wrong
    for path in (args.session, args.against):
        if path:
            TraceStore(Path(path))  # a bad path or a non-session file: exit 2 before the screen
    if args.against:
        Session(args.against, salvage=args.salvage)
    cut = args.cut
    if args.why:
        from edgetrace.tui._finding import finding_cut

        try:
            focus, cut = finding_cut(Path(args.session), args.why.strip()), True
        except ValueError as exc:
            raise UsageError(f"--why: {exc}") from None
    from edgetrace.tui._app import ExplorerApp
    from edgetrace.tui._recent import recent_file

    app = ExplorerApp(args.session, against=args.against, follow=not args.no_follow, focus=focus,
                      cut=cut, query=args.filter, recent=recent_file(), salvage=args.salvage)
    app.run()
    if app.error is not None:
        raise app.error  # the CLI's contract: bad input one line and 2, a bug one line and 3
    return 0
