"""Record a live session of a scenario: a hub and one agent per node as separate processes
on loopback, real TCP between them, links emulated per the chosen grid profile."""

from __future__ import annotations

import argparse
import sys

import msgspec

from edgetrace._errors import UsageError
from edgetrace.cli._agent import snapshot_period
from edgetrace.cli._progress import progress_bar

EXAMPLES = """\
edgetrace record agri --out run.ets
edgetrace record agri --out run.ets --profile 4g --size 4 --seed 7
edgetrace record ./my_scenario --out run.ets --audit --drain-timeout 60
edgetrace record ./my_scenario --out field.ets --inputs-from ride.mcap --topic /camera/caption=frame@tractor-01"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", metavar="SCENARIO", help="scenario name (agri, swarm) or path to a scenario folder")
    p.add_argument("--out", required=True, metavar="SESSION", help="where to write the session (.ets)")
    p.add_argument("--profile", help="grid profile, e.g. good or 4g (default: the scenario's)")
    p.add_argument("--size", type=int, help="number of field nodes (default: the scenario's, 8 tractors for agri)")
    p.add_argument("--seed", type=int, default=0, help="seed for inputs, link emulation and ctx.rng")
    p.add_argument("--inputs-from", metavar="BAG", help="take the inputs from a ROS 2 bag instead "
                   "(rosbag2 folder or .mcap/.db3; needs edgetrace[ros]; see docs/robotics.md)")
    p.add_argument("--topic", action="append", default=[], metavar="BAG_TOPIC=APP_TOPIC[@NODE]",
                   help="a bag topic to feed as an app topic, e.g. /camera/caption=frame (repeatable)")
    p.add_argument("--drain-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="after the last input, wait at most this long for every handler to finish, every "
                   "message to arrive and every spool to be acknowledged (default 30)")
    p.add_argument("--audit", action="store_true",
                   help="report each call a handler makes that a replay cannot repeat (time.time(), random.*, "
                   "threads, blocking I/O) with its line; exit 1 when there is any (the session is still written)")
    p.add_argument("--snapshot-every", default="10s", metavar="DURATION",
                   help="each node snapshots its state this often, when idle, so the session can be replayed "
                        "from a consistent cut (edgetrace replay --from; default 10s; 0 = never)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgetrace.agents._fleet import record
    from edgetrace.agents._scenario import load_scenario

    scenario = load_scenario(args.scenario)
    if args.inputs_from or args.topic:
        from edgetrace.agents._bag import with_bag_inputs

        if not args.inputs_from:
            raise UsageError("--topic needs --inputs-from BAG")
        scenario = with_bag_inputs(scenario, args.inputs_from, args.topic, size=args.size)
    with progress_bar(f"recording {scenario.name}", enabled=not args.json) as update:
        result = record(scenario, Path(args.out), profile=args.profile, size=args.size, seed=args.seed,
                        drain_timeout_s=args.drain_timeout, audit=args.audit, progress=update,
                        compacting=lambda done, total: update(done, total, "compacting the session"),
                        snapshot_every_ns=snapshot_period(args.snapshot_every))
    from edgetrace._handler_errors import error_groups, error_summary
    from edgetrace._session import Session

    spans = Session.open(result.path).spans
    errors = [{"error": what, "at": where, "count": len(found), "traces": sorted({s.trace for s in found})}
              for what, where, found in error_groups(spans)]
    summary = {"session": str(result.path), "id": result.session, "nodes": result.nodes, "inputs": result.inputs,
               "spans": result.spans, "wall_seconds": round(result.wall_s, 1), "agent_failures": result.agent_failures,
               "handler_errors": errors, "drain": result.drained.to_dict() if result.drained else None}
    if result.audit is not None:
        summary["audit"] = result.audit
    if args.json:
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
        return 1 if result.audit else 0
    sys.stdout.write(f"recorded {result.spans} spans from {len(result.nodes)} nodes ({result.inputs} inputs) "
                     f"in {result.wall_s:.1f}s → {result.path}\n")
    if result.drained is not None and not result.drained.quiet:
        sys.stdout.write(f"  warning: stopped at the drain timeout ({args.drain_timeout:g}s) with work left: "
                         f"{'; '.join(result.drained.busy)}\n")
    for failure in result.agent_failures:
        sys.stdout.write(f"  warning: agent {failure}\n")
    said = error_summary(spans)
    if said:
        sys.stdout.write(f"  warning: {said}\n")
    if result.audit:
        calls = sum(int(str(f["count"])) for f in result.audit)
        sys.stdout.write(f"  audit: {calls} call(s) from handlers a replay cannot repeat "
                         "(use ctx.now(), ctx.rng, ctx.sleep(), ctx.call()):\n")
        for f in result.audit:
            sys.stdout.write(f"    {f['call']} at {f['at']} on {f['node']} ({f['count']}×)\n")
    elif result.audit is not None:
        sys.stdout.write("  audit: no handler made a call a replay cannot repeat\n")
    sys.stdout.write(f"  edgetrace show {result.path}\n  edgetrace replay {result.path}\n")
    return 1 if result.audit else 0
