"""Run one node of an app live: record every step into a local spool and ship it to the
hub (store-and-forward), talking to peer nodes over TCP with optional link emulation.

The shared token comes from $EDGETRACE_TOKEN or --token-file (not the command line, which
anyone can read in the process list); it is required to listen on a non-loopback address.
Links to the hub and to peers can run over TLS (docs/security.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from edgetrace._errors import UsageError
from edgetrace._units import parse_duration
from edgetrace.cli._net import cli_token, loopback, parse_address

EXAMPLES = """\
edgetrace agent --app mypkg.pipeline:app --node tractor-07 --session field-trial --hub 10.0.0.2:7411"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", required=True, metavar="MODULE:APP", help="the app, e.g. mypkg.pipeline:app")
    p.add_argument("--node", required=True, metavar="ID", help="this node's id, e.g. tractor-07")
    p.add_argument("--hub", default="127.0.0.1:7411", metavar="HOST:PORT", help="the hub to ship spans to")
    p.add_argument("--session", required=True, metavar="ID", help="session id the spans belong to")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT", help="where peers reach this node")
    p.add_argument("--peer", action="append", default=[], metavar="NODE=HOST:PORT", help="a peer's address")
    p.add_argument("--token-file", metavar="FILE", help="read the shared token from FILE (mode 600; default "
                   "$EDGETRACE_TOKEN)")
    p.add_argument("--token", help=argparse.SUPPRESS)  # visible in the process list: kept for old scripts
    tls = p.add_argument_group("TLS (docs/security.md)")
    tls.add_argument("--tls-ca", metavar="FILE", help="CA that signed the hub's and the peers' certificates; "
                     "turns TLS on for the links to them (default with --tls-cert: the system's CAs)")
    tls.add_argument("--tls-cert", metavar="FILE", help="this node's certificate: its peer port serves TLS with "
                     "it, and presents it to the hub and peers that ask (mutual TLS)")
    tls.add_argument("--tls-key", metavar="FILE", help="the key of --tls-cert (default: in the same file)")
    tls.add_argument("--tls-require-client-cert", action="store_true",
                     help="peers must present a certificate signed by --tls-ca (mutual TLS on the peer port)")
    p.add_argument("--spool", default=None, metavar="DIR",
                   help="local spool folder (default: DATA/spool, DATA being $EDGETRACE_DATA or "
                   "~/.local/share/edgetrace: the node's data folder, not the working directory)")
    p.add_argument("--sync", default="never", choices=["never", "always"],
                   help="fsync every span to the spool (always) or leave it to the OS (never, default)")
    p.add_argument("--grid", metavar="JSON", help="grid profile (as stored in a session manifest) to emulate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snapshot-every", default="10s", metavar="DURATION",
                   help="take a snapshot of the node's state this often, when it is idle, for "
                        "edgetrace replay --from (default 10s; 0 = never)")
    p.add_argument("--epoch-ns", type=int, default=None, help="session epoch (wall ns); default: now")
    p.add_argument("--audit", metavar="FILE",
                   help="report, as JSON in FILE at stop, each call a handler makes that a replay cannot repeat "
                   "(wall clock, global random, threads, blocking I/O) with its line; the calls still happen")
    p.add_argument("--wait-epoch", action="store_true",
                   help="run the app's start-up handlers when a driver sends the session epoch "
                   "(what `edgetrace record` does), not at once")


def snapshot_period(text: str) -> int:
    """`--snapshot-every`: a duration (0 turns snapshots off)."""
    if text.strip() in ("0", "off"):
        return 0
    try:
        period = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"bad --snapshot-every {text!r}: {exc}") from None
    if period == 0 and any(c in "123456789" for c in text):  # not "0s": a period that rounds to nothing
        raise UsageError(f"bad --snapshot-every {text!r}: shorter than 1 ns (0 turns snapshots off)")
    return period


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
    token = cli_token(args)
    listen = parse_address(args.listen, default_port=0)
    if not loopback(listen[0]) and not token:
        raise UsageError(f"refusing to listen for peers on {listen[0]} without a token: set EDGETRACE_TOKEN or "
                         "--token-file")
    hub = parse_address(args.hub, default_port=7411)
    server_ssl = client_ssl = None
    if args.tls_ca or args.tls_cert:
        from edgetrace._credentials import client_context, server_context

        client_ssl = client_context(args.tls_ca, cert=args.tls_cert, key=args.tls_key)
        if args.tls_cert:
            server_ssl = server_context(args.tls_cert, args.tls_key,
                                        client_ca=args.tls_ca if args.tls_require_client_cert else None)
    elif args.tls_require_client_cert or args.tls_key:
        raise UsageError("--tls-require-client-cert and --tls-key need --tls-cert (and --tls-ca)")
    from edgetrace._credentials import PeerSecurity
    from edgetrace._transport import TcpTransport

    cfg = AgentConfig(
        app_ref=args.app, node=args.node, hub=hub, session=args.session,
        listen=listen, peers=peers, token=token,
        spool_dir=Path(args.spool) if args.spool else None, profile=profile, seed=args.seed, epoch_ns=args.epoch_ns,
        sync=args.sync, transport=TcpTransport(*hub, ssl=client_ssl),
        security=PeerSecurity(token=token, server_ssl=server_ssl, client_ssl=client_ssl),
        wait_epoch=args.wait_epoch, audit=Path(args.audit) if args.audit else None,
        snapshot_every_ns=snapshot_period(args.snapshot_every),
    )
    return asyncio.run(run_agent(cfg))


