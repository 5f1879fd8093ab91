"""Run one node of an app live: record every step into a local spool and ship it to the
hub (store-and-forward), talking to peer nodes over TCP with optional link emulation."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from edgetrace._errors import UsageError
from edgetrace.cli._hub import parse_address

EXAMPLES = """\
edgetrace agent --app mypkg.pipeline:app --node tractor-07 --session field-trial --hub 10.0.0.2:7411"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", required=True, metavar="MODULE:APP", help="the app, e.g. mypkg.pipeline:app")
    p.add_argument("--node", required=True, metavar="ID", help="this node's id, e.g. tractor-07")
    p.add_argument("--hub", default="127.0.0.1:7411", metavar="HOST:PORT", help="the hub to ship spans to")
    p.add_argument("--session", required=True, metavar="ID", help="session id the spans belong to")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT", help="where peers reach this node")
    p.add_argument("--peer", action="append", default=[], metavar="NODE=HOST:PORT", help="a peer's address")
    p.add_argument("--token", default=os.environ.get("EDGETRACE_TOKEN", ""), help="shared hub token")
    p.add_argument("--spool", default=None, metavar="DIR",
                   help="local spool folder (default: DATA/spool, DATA being $EDGETRACE_DATA or "
                   "~/.local/share/edgetrace: the node's data folder, not the working directory)")
    p.add_argument("--sync", default="never", choices=["never", "always"],
                   help="fsync every span to the spool (always) or leave it to the OS (never, default)")
    p.add_argument("--grid", metavar="JSON", help="grid profile (as stored in a session manifest) to emulate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epoch-ns", type=int, default=None, help="session epoch (wall ns); default: now")


def run(args: argparse.Namespace) -> int:
    from edgetrace.agents._agent import AgentConfig, run_agent
    from edgetrace.agents._grid import GridProfile

    peers = {}
    for item in args.peer:
        name, sep, addr = item.partition("=")
        if not sep or not name:
            raise UsageError(f"bad --peer {item!r}: expected NODE=HOST:PORT")
        peers[name] = parse_address(addr, default_port=7412)
    profile = None
    if args.grid:
        try:
            profile = GridProfile.from_dict(json.loads(args.grid))
        except (ValueError, TypeError, AttributeError) as exc:
            raise UsageError(f"bad --grid JSON: {exc}") from None
    cfg = AgentConfig(
        app_ref=args.app, node=args.node, hub=parse_address(args.hub, default_port=7411), session=args.session,
        listen=parse_address(args.listen, default_port=0), peers=peers, token=args.token,
        spool_dir=Path(args.spool) if args.spool else None, profile=profile, seed=args.seed, epoch_ns=args.epoch_ns, sync=args.sync,
    )
    return asyncio.run(run_agent(cfg))
