"""One live agent process: an app's node, its spool, its shipper and its peer server.

    handlers ─ Context ─ Recorder ─► Spool (disk) ─► Shipper ─TcpTransport─► Hub
                  └── LiveWorld ◄─TCP─► other agents (link emulation per grid profile)

A restarted agent resumes its sequence numbers and clock from the spool, so the node's
stream in the session stays contiguous across crashes; each start is a new incarnation of the
spool (edgetrace.agents._spool), so a spool lost or rolled back since cannot make the hub
drop new spans as duplicates. The spool lives in the node's data folder
(`DATA/spool/<session>/<node>.spool`, DATA as edgetrace._discovery says), not the working
directory, unless `--spool` says otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetrace._credentials import PeerSecurity
from edgetrace._discovery import data_dir
from edgetrace._records import Manifest, Span
from edgetrace._transport import TcpTransport, Transport
from edgetrace.agents._grid import GridProfile
from edgetrace.agents._live import LiveWorld
from edgetrace.agents._node import NodeRuntime
from edgetrace.agents._sandbox import Sandbox
from edgetrace.agents._scenario import load_app
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._sink import SpanSink
from edgetrace.agents._spool import Spool

__all__ = ["AgentConfig", "run_agent"]

log = logging.getLogger("edgetrace.agent")


class _ShippingSink(SpanSink):
    """The spool, plus a nudge to the shipper after each span."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.shipper: Shipper | None = None

    def emit(self, span: Span) -> None:
        self.spool.emit(span)
        if self.shipper is not None:
            self.spool.flush()
            self.shipper.poke()

    def put_blob(self, data: bytes) -> str:
        return self.spool.put_blob(data)


@dataclass
class AgentConfig:
    app_ref: str
    node: str
    hub: tuple[str, int]
    session: str
    listen: tuple[str, int] = ("127.0.0.1", 0)
    peers: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    token: str = ""
    spool_dir: Path | None = None  # default: the node's data folder (spool_root())
    profile: GridProfile | None = None
    seed: int = 0
    epoch_ns: int | None = None
    sync: str = "never"
    manifest: Manifest | None = None
    drain_timeout: float = 10.0
    #: start-up handlers wait for the session epoch (sent by the recording driver), so they run
    #: on the session's clock; without it they run as soon as the agent is up
    wait_epoch: bool = False
    #: write what handlers did that a replay cannot repeat (wall clock, global random, threads,
    #: I/O — edgetrace.agents._sandbox, live mode) to this JSON file at stop
    audit: Path | None = None
    flush_timeout: float = 20.0
    transport: Transport | None = None  # default: plain TCP to `hub` (the CLI builds a TLS one)
    security: PeerSecurity | None = None  # the peer port's token, TLS and limits (default: none, loopback)
    #: take a state snapshot every this many ns of the node's clock, when idle (0 = never):
    #: what `edgetrace replay --from` restores (agents/_snapshot.py)
    snapshot_every_ns: int = 0


async def run_agent(cfg: AgentConfig) -> int:
    app = load_app(cfg.app_ref)
    spool = Spool((cfg.spool_dir or spool_root()) / cfg.session / f"{_file_name(cfg.node)}.spool", sync=cfg.sync)
    sink = _ShippingSink(spool)
    models, policies = app.artifact_hashes()
    manifest = Manifest(session_id=cfg.session, app=app.name, app_ref=cfg.app_ref, nodes=[cfg.node],
                        models=models, policies=policies, seed=cfg.seed,
                        python=sys.version.split()[0])
    if cfg.manifest is not None:
        manifest = manifest.merged(cfg.manifest)
    world = LiveWorld(cfg.node, sink, epoch_ns=cfg.epoch_ns or time.time_ns(), peers=cfg.peers,
                      profile=cfg.profile, seed=cfg.seed, security=cfg.security)
    node = NodeRuntime(app, cfg.node, world, seed=cfg.seed, snapshot_every_ns=cfg.snapshot_every_ns)
    audit = Sandbox(now_ns=world.now_ns, stand_ins=False).__enter__() if cfg.audit else None
    node.artifacts.load_all()  # a broken model or policy stops the agent here, in one line, not in every step
    restarted = bool(spool.last_seq)
    if restarted:
        node.recorder.resume(spool.last_seq, spool.clock)
        log.warning("agent %s: resuming after seq %d from the spool", cfg.node, spool.last_seq)
    def rebase(after: int) -> None:  # the hub's stream is past our numbers: continue after it
        node.recorder.resume(after, node.recorder.clock_dict())

    shipper = Shipper(spool, cfg.transport or TcpTransport(*cfg.hub), token=cfg.token, node=cfg.node,
                      session=cfg.session, manifest=manifest, seed=cfg.seed, on_rebase=rebase)
    sink.shipper = shipper
    server = await world.serve(node.deliver, *cfg.listen)
    shipper.start()
    # the trace a replay gives this start-up: the first start, or the n-th start of this spool
    starts = sum(1 for i in spool.incarnations if i.restart)
    start_trace = f"{cfg.node}/restart-{max(1, starts - 1)}" if restarted else f"{cfg.node}/start"

    def start() -> None:
        node.start(start_trace)

    if cfg.wait_epoch:
        world.on_epoch = start
    else:
        start()

    def report(poll: Any) -> None:  # the driver's termination check reads this line on stdout
        state = {**world.status(node), "poll": poll, "unacked": spool.unacked}
        print("status " + json.dumps(state, sort_keys=True), flush=True)

    world.on_status = report
    port = server.sockets[0].getsockname()[1]
    print(f"ready {cfg.node} {cfg.listen[0]}:{port}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, world.stop_requested.set)
    await world.stop_requested.wait()
    server.close()
    await world.drain(node, cfg.drain_timeout)
    spool.flush()
    complete = await shipper.flush(cfg.flush_timeout)
    await shipper.stop()
    node.close()
    spool.close()
    if audit is not None and cfg.audit is not None:
        audit.__exit__()
        found = [{"node": cfg.node, **f} for f in audit.report()]
        cfg.audit.write_text(json.dumps(found, indent=1) + "\n")
    quarantined = spool.stats()
    if quarantined["lost"] or quarantined["rejected"]:
        print(f"agent {cfg.node}: {quarantined['lost']} span(s) lost to damage in the spool and "
              f"{quarantined['rejected']} refused by the hub (they did not validate) — recorded as lost in the "
              "session", file=sys.stderr, flush=True)
    if not complete:
        why = f"; the hub: {shipper.cursor.busy or shipper.refused}" if shipper.cursor.busy or shipper.refused else ""
        print(f"agent {cfg.node}: {spool.unacked} spans not yet acknowledged{why}; they stay in "
              f"{spool.path} and ship on the next start", file=sys.stderr, flush=True)
        return 1
    print(f"stopped {cfg.node} {spool.last_span} spans shipped", flush=True)
    return 0


def spool_root() -> Path:
    """Where agents keep their spools by default: DATA/spool (DATA: $EDGETRACE_DATA, else ~/.local/share/edgetrace)."""
    return data_dir() / "spool"


def _file_name(node: str) -> str:
    """A node id as a file name: anything but letters, digits, '.', '_' and '-' escaped."""
    return "".join(c if (c.isalnum() and c.isascii()) or c in "._-" else f"%{ord(c):02x}" for c in node).lstrip(".") or "_"
