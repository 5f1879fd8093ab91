"""List a session's nodes, traces and spans in causal order, for scripts and for people
without the explorer. `--trace ID` lists one trace step by step; `--json` prints data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from edgetrace import _attrs as attr
from edgetrace._handler_errors import error_summary, is_handler_error
from edgetrace._records import Span, Status
from edgetrace._session import Session
from edgetrace._text import printable

EXAMPLES = """\
edgetrace show run.ets
edgetrace show run.ets --trace tractor-01/f0001
edgetrace show run.ets --cuts
edgetrace show run.ets --json"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("session", metavar="SESSION", help="session file (.ets)")
    p.add_argument("--trace", metavar="ID", help="list the spans of one trace")
    p.add_argument("--paths", action="store_true",
                   help="latency per causal chain shape (input → … → act across nodes): percentiles and the "
                        "hop that dominates")
    p.add_argument("--cuts", action="store_true",
                   help="the consistent cuts the session's state snapshots make (for edgetrace replay --from)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--salvage", action="store_true",
                   help="skip damaged frames (with a warning that counts what is missing) instead of refusing "
                   "the session")


def trace_summary(trace_id: str, spans: list[Span]) -> dict[str, Any]:
    """One line of the trace list: where it started, what it touched, what it decided."""
    root = spans[0]
    acts = [s.name for s in spans if s.kind.value == "act"]
    decisions = [s.attrs.get(attr.DECISION) for s in spans if s.kind.value == "decide"]
    by_node: dict[str, tuple[int, int]] = {}
    for s in spans:
        lo, hi = by_node.get(s.node, (s.start, s.end))
        by_node[s.node] = (min(lo, s.start), max(hi, s.end))
    # durations are per node (local clocks may be skewed); the trace duration is the longest.
    duration = max((hi - lo for lo, hi in by_node.values()), default=0)
    return {
        "trace": trace_id,
        "root": root.ref,
        "root_name": root.name,
        "nodes": sorted(by_node),
        "spans": len(spans),
        "duration_ns": duration,
        "errors": sum(1 for s in spans if s.status is Status.ERROR),
        "actions": acts,
        "decision": next((d for d in reversed(decisions) if d is not None), None),
        "untimed": any(s.kind.value == "otel" for s in spans),
    }


def span_row(span: Span, session: Session) -> dict[str, Any]:
    return {
        "ref": span.ref,
        "node": span.node,
        "seq": span.seq,
        "kind": span.kind.value,
        "name": span.name,
        "trace": span.trace,
        "parent": span.parent,
        "cause": span.cause,
        "start_ns": span.start,
        "end_ns": span.end,
        "vclock": session.index.clock(span).as_dict(),
        "status": span.status.value,
        "error": span.error,
        "attrs": span.attrs,
        "blobs": span.blobs,
    }


def _ms(ns: int) -> str:
    return f"{ns / 1e6:9.1f}ms" if ns < 10_000_000_000 else f"{ns / 1e9:9.2f}s "


def open_session(path: str, salvage: bool) -> Session:
    """A session for a reader verb; with `salvage`, damage is skipped and reported on stderr."""
    session = Session.open(path, salvage=salvage)
    if session.damage:
        print(f"edgetrace: warning: {session.salvage_report()}", file=sys.stderr, flush=True)
    return session


def _cuts(session: Session, as_json: bool) -> int:
    """`show --cuts`: where a replay can start (`edgetrace replay SESSION --from CUT`)."""
    from edgetrace.replay._cuts import CutFinder
    from edgetrace.replay._recording import Recording

    recording = Recording(session)
    cuts = CutFinder(recording.spans, session.index, session.nodes).cuts()
    taken = [s for found in recording.snapshots.values() for s in found]
    skipped = sorted({s.error for s in taken if s.error})
    if as_json:
        data = {"session": str(session.path), "snapshots": len(taken),
                "skipped": sum(1 for s in taken if s.error), "skip_reasons": skipped,
                "cuts": [c.to_dict() for c in cuts]}
        sys.stdout.write(msgspec.json.encode(data, order="deterministic").decode() + "\n")
        return 0
    out = sys.stdout
    out.write(f"{len(cuts)} consistent cut(s) from {len(taken)} snapshot(s) in {printable(str(session.path))}\n")
    for reason in skipped:
        out.write(f"  skipped: {printable(reason)}\n")
    for cut in cuts:
        refs = " ".join(f"{printable(node)}:{seq}" if seq else f"{printable(node)}:start"
                        for node, seq in sorted(cut.seqs.items()))
        out.write(f"  {cut.id:<8} at {cut.to_dict()['at']:<10} {refs}\n")
    if not taken:
        out.write("  (record with --snapshot-every 10s to take state snapshots)\n")
    return 0


def run(args: argparse.Namespace) -> int:
    session = open_session(args.session, args.salvage)
    m = session.manifest
    out = sys.stdout
    if args.cuts:
        return _cuts(session, args.json)
    if args.paths:
        from edgetrace._paths import chain_paths

        paths = chain_paths(session.spans, session.index)
        if args.json:
            out.write(msgspec.json.encode({"session": str(session.path), "paths": paths},
                                          order="deterministic").decode() + "\n")
            return 0
        out.write(f"{len(paths)} chain shape(s) in {session.path}\n")
        for path in paths:
            lat, hop = path["latency_ns"], path["dominant_hop"]
            out.write(f"\n{path['chains']} chain(s): " + printable(" → ".join(path["shape"])) + "\n")
            out.write(f"  end to end  p50 {_ms(lat['p50']).strip()}  p90 {_ms(lat['p90']).strip()}  "
                      f"p99 {_ms(lat['p99']).strip()}  max {_ms(lat['max']).strip()}\n")
            out.write(f"  dominated by {printable(hop['from'])} → {printable(hop['to'])}: median {_ms(hop['median_ns']).strip()} "
                      f"({hop['share']:.0%} of the median chain)\n")
        return 0
    if args.trace:
        spans = session.trace(args.trace)
        if args.json:
            data = {"trace": args.trace, "spans": [span_row(s, session) for s in spans]}
            out.write(msgspec.json.encode(data, order="deterministic").decode() + "\n")
            return 0
        origin: dict[str, int] = {}
        for s in spans:
            origin.setdefault(s.node, s.start)
        out.write(f"trace {printable(args.trace)}: {len(spans)} spans in causal order\n")
        for s in spans:
            extra = f"  ← {printable(s.cause)}" if s.cause else ""
            err = f"  ERROR {printable(s.error)}" if s.status is Status.ERROR else ""
            where = s.attrs.get(attr.CODE)
            if is_handler_error(s) and isinstance(where, str) and where:
                err += f" at {printable(where)}"
            out.write(
                f"  {printable(s.ref):<22} {s.kind.value:<9} {printable(s.name):<28} "
                f"+{_ms(s.start - origin[s.node])} {_ms(s.duration)}  "
                f"[{printable(session.index.clock(s))}]{extra}{err}\n"
            )
        return 0
    traces = session.traces()
    summaries = [trace_summary(t, spans) for t, spans in traces.items()]
    if args.json:
        data = {
            "session": str(session.path),
            "manifest": msgspec.to_builtins(m),
            "sealed": session.sealed,
            "nodes": session.nodes,
            "spans": len(session),
            "traces": summaries,
            "incarnations": msgspec.to_builtins(session.incarnations),
            "lost": msgspec.to_builtins(session.lost),
        }
        out.write(msgspec.json.encode(data, order="deterministic").decode() + "\n")
        return 0
    state = "complete" if session.sealed else "open (still being written, or the writer stopped)"
    p = printable
    out.write(f"session  {p(session.path)}  [{state}]\n")
    out.write(f"app      {p(m.app or '-')}  scenario {p(m.scenario or '-')}  profile {p(m.profile or '-')}"
              f"  seed {m.seed}\n")
    out.write(f"nodes    {len(session.nodes)}: {p(', '.join(session.nodes))}\n")
    for kind, table in (("models", m.models), ("policies", m.policies)):
        if table:
            out.write(f"{kind:<8} " + ", ".join(f"{p(k)} {p(v[:12])}" for k, v in sorted(table.items())) + "\n")
    restarts = [i for i in session.incarnations if i.restart and i.base > 1]
    rollbacks = [i for i in session.incarnations if i.reused]
    if restarts or rollbacks or session.lost:
        lost = sum(x.count for x in session.lost)
        out.write(f"streams  {len(restarts)} agent restart(s), {len(rollbacks)} rollback(s) stored around "
                  f"({sum(i.reused for i in rollbacks)} seqs reused), {lost} record(s) lost or refused\n")
    out.write(f"traces   {len(summaries)}  spans {len(session)}\n")
    said = error_summary(session.spans)
    if said:
        out.write(f"errors   {printable(said)}\n")
    out.write("\n")
    for t in summaries:
        flags = ("E" if t["errors"] else " ") + ("~" if t["untimed"] else " ")
        acts = p(",".join(t["actions"]) or "-")
        out.write(
            f"{flags} {p(t['trace']):<24} {t['spans']:>4} spans {_ms(t['duration_ns'])} "
            f"{len(t['nodes']):>3} nodes  act {acts:<10} decision {p(t['decision'])}\n"
        )
    return 0
