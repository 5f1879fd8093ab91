"""Ask SQL questions of one or more sessions through DuckDB (needs edgetrace[sql]).

Tables: `spans` (one row per span: session, ref, node, seq, kind, name, trace, parent, cause,
start_ns, end_ns, duration_ns, start_unix_ns, end_unix_ns, status, error, untimed, clock,
attrs, blobs) and `sessions` (one row per session: its manifest). `attrs` is JSON:
`attrs->>'edgetrace.decision'`. See docs/cli.md."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

import msgspec

from edgetrace._errors import UsageError
from edgetrace._text import printable

EXAMPLES = """\
edgetrace query run.ets "SELECT node, count(*) AS sprays FROM spans WHERE kind = 'act' GROUP BY node"
edgetrace query a.ets b.ets "SELECT session, max(duration_ns) FROM spans WHERE kind = 'state.put' GROUP BY 1"
edgetrace query run.ets "SELECT attrs->>'edgetrace.decision' AS d, count(*) FROM spans WHERE kind = 'decide' GROUP BY d" --json"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="+", metavar="SESSION... SQL", help="one or more session files, then the statement")
    p.add_argument("--json", action="store_true", help="print rows as a JSON list of objects")
    p.add_argument("--csv", action="store_true", help="print rows as CSV with a header")


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    return str(value)


def run(args: argparse.Namespace) -> int:
    from edgetrace._parquet import run_query
    from edgetrace._session import Session
    from edgetrace.cli._progress import progress_bar

    if len(args.args) < 2:
        raise UsageError("expected SESSION... SQL, e.g. edgetrace query run.ets \"SELECT count(*) FROM spans\"")
    *paths, sql = args.args
    sessions = [Session.open(p) for p in paths]
    with progress_bar("loading spans", enabled=not (args.json or args.csv)) as update:
        columns, rows = run_query(sessions, sql, progress=update)
    if args.json:
        data = [dict(zip(columns, row, strict=True)) for row in rows]
        sys.stdout.write(msgspec.json.encode(data, enc_hook=str).decode() + "\n")
    elif args.csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(columns)
        out.writerows([[_text(v) for v in row] for row in rows])
    else:
        table = [columns, *[[printable(_text(v)) for v in row] for row in rows]]
        widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
        for n, row in enumerate(table):
            sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")
            if n == 0:
                sys.stdout.write("  ".join("-" * w for w in widths) + "\n")
        sys.stdout.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")
    return 0
