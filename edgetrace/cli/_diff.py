"""Compare two sessions step by step, aligned by causal position (trace, node, step,
occurrence) — typically a recording and a replay saved with `edgetrace replay --save`.
Exit 1 when they differ, 0 when every step matches."""

from __future__ import annotations

import argparse
import sys

import msgspec

from edgetrace._text import printable

EXAMPLES = """\
edgetrace diff run.ets replayed.ets
edgetrace diff run.ets replayed.ets --trace tractor-01/f0003 --json"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="first session (e.g. the recording)")
    p.add_argument("b", metavar="B", help="second session (e.g. a replay saved with --save)")
    p.add_argument("--trace", metavar="ID", help="compare one trace only")
    p.add_argument("--limit", type=int, default=20, help="divergences to list in text output (default 20)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--salvage", action="store_true", help="skip damaged frames (with a warning) instead of refusing")


def run(args: argparse.Namespace) -> int:
    from edgetrace._stepkey import step_keys
    from edgetrace.cli._show import open_session
    from edgetrace.replay._divergence import compare

    a, b = open_session(args.a, args.salvage), open_session(args.b, args.salvage)
    spans_a, spans_b = a.spans, b.spans
    if args.trace:
        spans_a = [s for s in spans_a if s.trace == args.trace]
        spans_b = [s for s in spans_b if s.trace == args.trace]
    found = compare(spans_a, step_keys(spans_a), a.index, spans_b, step_keys(spans_b), b.index)
    if args.json:
        data = {"a": args.a, "b": args.b, "steps": {"a": len(spans_a), "b": len(spans_b)},
                "divergences": [d.to_dict() for d in found]}
        sys.stdout.write(msgspec.json.encode(data, order="deterministic").decode() + "\n")
        return 1 if found else 0
    p = printable
    if not found:
        sys.stdout.write(f"identical: {len(spans_a)} steps in {p(args.a)} match {p(args.b)} step for step\n")
        return 0
    traces = sorted({d.trace for d in found})
    sys.stdout.write(f"{len(found)} steps differ in {len(traces)} traces ({p(args.a)} → {p(args.b)})\n")
    current = None
    for listed, d in enumerate(found):  # every divergence, trace by trace, in causal order, up to --limit
        if listed >= args.limit:
            sys.stdout.write(f"  … {len(found) - listed} more divergences (--limit N, or --json for all)\n")
            break
        if d.trace != current:
            current = d.trace
            sys.stdout.write(f"  trace {p(d.trace)}:\n")
        sys.stdout.write(f"    {p(d.describe())}\n")
    return 1
