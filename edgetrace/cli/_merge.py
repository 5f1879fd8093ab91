"""Combine the sessions that several hubs recorded of one run into one session, exactly:
each node's records by seq, vector clocks as recorded, blobs by content hash, one manifest.

Exit 0 when merged; 2 when the sessions are not parts of one run (a record or an identity
field of the manifests differs) or a node's stream has a gap none of them fills."""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """\
edgetrace merge hub-a/run.ets hub-b/run.ets --out run.ets
edgetrace merge a.ets b.ets c.ets --out run.ets --json"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("sessions", nargs="+", metavar="SESSION", help="sessions of one run, from different hubs")
    p.add_argument("--out", required=True, metavar="OUT", help="the merged session to write")
    p.add_argument("--allow-gaps", action="store_true",
                   help="merge even when a node's records are missing from every part")
    p.add_argument("--json", action="store_true", help="print what was merged as JSON")


def run(args: argparse.Namespace) -> int:
    import msgspec

    from edgetrace._merge import merge_sessions

    result = merge_sessions(args.sessions, args.out, allow_gaps=args.allow_gaps)
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(result.to_dict()), indent=2) + b"\n")
        return 0
    parts = ", ".join(f"{p['session']} ({p['records']:,} records)" for p in result.parts)
    sys.stdout.write(f"merged {parts}\n  into {result.out}: {result.records:,} records of {len(result.nodes)} "
                     f"nodes, {result.blobs:,} blobs"
                     + (f", {result.duplicates:,} records found in more than one part" if result.duplicates else "")
                     + ("" if result.sealed else " (not sealed: a part was still being written)") + "\n")
    return 0
