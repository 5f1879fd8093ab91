"""Record a live session of a scenario: a hub and one agent per node as separate processes
on loopback, real TCP between them, links emulated per the chosen grid profile."""

from __future__ import annotations

import argparse
import sys

import msgspec

from edgetrace._errors import UsageError
from edgetrace.cli._progress import progress_bar

EXAMPLES = """\
edgetrace record agri --out run.ets
edgetrace record agri --out run.ets --profile 4g --size 4 --seed 7
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
                        progress=update)
    from edgetrace._handler_errors import error_groups, error_summary
    from edgetrace._session import Session

    spans = Session.open(result.path).spans
    errors = [{"error": what, "at": where, "count": len(found), "traces": sorted({s.trace for s in found})}
              for what, where, found in error_groups(spans)]
    summary = {"session": str(result.path), "id": result.session, "nodes": result.nodes, "inputs": result.inputs,
               "spans": result.spans, "wall_seconds": round(result.wall_s, 1), "agent_failures": result.agent_failures,
               "handler_errors": errors}
    if args.json:
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    else:
        sys.stdout.write(f"recorded {result.spans} spans from {len(result.nodes)} nodes ({result.inputs} inputs) "
                         f"in {result.wall_s:.1f}s → {result.path}\n")
        for failure in result.agent_failures:
            sys.stdout.write(f"  warning: agent {failure}\n")
        said = error_summary(spans)
        if said:
            sys.stdout.write(f"  warning: {said}\n")
        sys.stdout.write(f"  edgetrace show {result.path}\n  edgetrace replay {result.path}\n")
    return 0
