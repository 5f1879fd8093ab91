"""Open the terminal trace explorer on a session: trace list, waterfall and space-time
views, span detail with payloads, causal filters, and with --against a replayed session the
recorded-vs-replayed diff. Without SESSION, pick one from $EDGETRACE_DATA (default
~/.local/share/edgetrace) or the current directory. A session still being written is
followed live. Press ? inside for every key."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgetrace._errors import UsageError

EXAMPLES = """\
edgetrace explore
edgetrace explore run.ets
edgetrace explore run.ets --against replayed.ets"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", nargs="?", help="session file (.ets); omit to pick one")
    p.add_argument("--against", metavar="REPLAYED",
                   help="a replayed session (edgetrace replay --save) to diff against SESSION")
    p.add_argument("--no-follow", action="store_true",
                   help="read the session once; do not follow a writer that is still appending")


def run(args: argparse.Namespace) -> int:
    from edgetrace._session import Session
    from edgetrace.tui._store import TraceStore

    if args.against and not args.session:
        raise UsageError("--against needs SESSION (the recording) as well")
    for path in (args.session, args.against):
        if path:
            TraceStore(Path(path))  # a bad path or a non-session file: exit 2 before the screen
    if args.against:
        Session(args.against)
    from edgetrace.tui._app import ExplorerApp

    app = ExplorerApp(args.session, against=args.against, follow=not args.no_follow)
    app.run()
    if app.error is not None:  # a session it could not read: one line, exit 2, as show does
        raise app.error
    return app.return_code or 0
