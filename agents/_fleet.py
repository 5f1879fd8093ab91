"""`edgetrace record`: a hub and one agent per node as real processes on loopback.

The driver checks the app's models and policies load, starts the hub, starts the agents
(each knowing its peers' addresses and the grid profile to emulate), waits until each says it
is ready, sets the session epoch (start-up handlers run then), feeds the scenario's inputs at
their scheduled times over TCP, and then *drains*: it asks every agent for its status until
every handler is idle, no timer is due within the profile's horizon, every message posted has
been taken in and every spool is acknowledged — twice in a row with the same counters, so a
message crossing between two reads is not missed (the counting termination check of Mattern's
four-counter method). A cap (`drain_timeout_s`) ends a run that never goes quiet, naming what
was still busy. Then it stops the agents, seals the session with the full manifest and stops
the hub. What is left is one session file.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgetrace._errors import ConfigError, EdgeTraceError, TransportError
from edgetrace._records import Manifest
from edgetrace._wire import Hello, Seal, decode_hub, encode_hub, read_frame, write_frame
from edgetrace.agents._grid import GridProfile
from edgetrace.agents._live import encode_message, encode_peer_hello
from edgetrace.agents._message import Message, MessageKind
from edgetrace.agents._scenario import Scenario, ScheduledInput

__all__ = ["RecordResult", "record"]


@dataclass
class Drained:
    """How the run ended: quiet (every node idle, nothing in flight), or still busy at the cap."""

    quiet: bool
    seconds: float
    polls: int
    busy: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"quiet": self.quiet, "seconds": round(self.seconds, 2), "polls": self.polls, "busy": self.busy}


@dataclass
class RecordResult:
    path: Path
    session: str
    nodes: list[str]
    inputs: int
    spans: int
    wall_s: float
    agent_failures: list[str]
    drained: Drained | None = None
    #: with `audit`: calls handlers made that a replay cannot repeat, per node and line
    audit: list[dict[str, object]] | None = None


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _readline(proc: subprocess.Popen[str], deadline: float, what: str) -> str:
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise TransportError(f"{what} exited early (code {proc.returncode}): {err.strip()[-300:]}")
        if sel.select(timeout=0.1):
            line = proc.stdout.readline()
            if line:
                return line.strip()
    raise TransportError(f"{what} did not start within the time allowed")


def record(
    scenario: Scenario,
    out: Path,
    *,
    profile: str | None = None,
    size: int | None = None,
    seed: int = 0,
    drain_timeout_s: float = 30.0,
    audit: bool = False,
    progress: Callable[[int, int], None] | None = None,
    compacting: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = lambda line: None,
    snapshot_every_ns: int = 0,
) -> RecordResult:
    started = time.monotonic()
    grid = scenario.profile(profile)
    size = size or scenario.default_size
    nodes = scenario.nodes(size)
    inputs = scenario.inputs(seed, size)
    if not inputs:
        raise ConfigError(f"scenario {scenario.name!r} produced no inputs")
    if drain_timeout_s <= 0:
        raise ConfigError(f"the drain timeout must be positive, got {drain_timeout_s}")
    _check_artifacts(scenario)
    session = f"{scenario.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    token = secrets.token_hex(16)
    work = Path(tempfile.mkdtemp(prefix="edgetrace-record-"))
    env = {**os.environ, "EDGETRACE_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "edgetrace"]
    procs: list[subprocess.Popen[str]] = []
    failures: list[str] = []
    try:
        hub = subprocess.Popen([*cmd, "hub", "--listen", "127.0.0.1:0", "--data", str(work / "data")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=work)
        procs.append(hub)
        line = _readline(hub, time.monotonic() + 30, "the hub")
        hub_addr = line.split(" listening on ", 1)[1].split(",", 1)[0]
        hub_host, hub_port = hub_addr.rsplit(":", 1)
        log(f"hub listening on {hub_addr}")
        ports = dict(zip(nodes, _free_ports(len(nodes)), strict=True))
        grid_json = json.dumps(grid.to_dict())
        agents: dict[str, subprocess.Popen[str]] = {}
        for node in nodes:
            argv = [*cmd, "agent", "--app", scenario.app_ref, "--node", node, "--hub", hub_addr, "--session", session,
                    "--listen", f"127.0.0.1:{ports[node]}", "--spool", str(work / "spool"), "--grid", grid_json,
                    "--seed", str(seed), "--wait-epoch", "--snapshot-every", f"{snapshot_every_ns}ns"]
            if audit:
                argv += ["--audit", str(work / f"audit-{len(agents)}.json")]
            for peer, port in ports.items():
                if peer != node:
                    argv += ["--peer", f"{peer}=127.0.0.1:{port}"]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=work)
            procs.append(proc)
            agents[node] = proc
        deadline = time.monotonic() + 90
        for node, proc in agents.items():
            _readline(proc, deadline, f"agent {node}")
        log(f"{len(agents)} agents ready after {time.monotonic() - started:.1f}s")
        models, policies = scenario.app.artifact_hashes()
        manifest = Manifest(
            session_id=session, app=scenario.app.name, app_ref=scenario.app_ref, scenario=scenario.name,
            profile=grid.name, seed=seed, nodes=nodes, models=models, policies=policies,
            created=datetime.now(UTC).isoformat(timespec="seconds"), python=sys.version.split()[0],
            meta={"grid": grid.to_dict(), "size": size, "inputs": len(inputs)},
        )
        # the agents count local time from this epoch; exporters need it to give Unix times
        manifest.meta["epoch_ns"], drained = asyncio.run(
            _drive(nodes, ports, inputs, agents, horizon_s=_settle(grid), timeout_s=drain_timeout_s,
                   progress=progress, token=token))
        log(f"drained after {drained.seconds:.1f}s" if drained.quiet else
            f"still busy after {drained.seconds:.1f}s: {'; '.join(drained.busy)}")
        for proc in agents.values():
            proc.send_signal(signal.SIGTERM)
        stop_deadline = time.monotonic() + 45
        for node, proc in agents.items():
            try:
                code = proc.wait(timeout=max(0.1, stop_deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = -9
            if code != 0:
                failures.append(f"{node} (exit {code}): {(proc.stderr.read() if proc.stderr else '').strip()[-300:]}")
        found = _audit_findings(work) if audit else None
        asyncio.run(_seal((hub_host, int(hub_port)), token, session, manifest))
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=30)
        produced = work / "data" / f"{session}.ets"
        if not produced.is_file():
            raise TransportError(f"the hub wrote no session ({produced} is missing)")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(produced), out)
        from edgetrace._compact import compact

        compact(out, progress=compacting)  # the hub has stopped and nobody reads it yet: recompress it small
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    from edgetrace._session import Session
    from edgetrace._trust import remember_session

    stored = Session(out)
    remember_session(stored.manifest)  # recorded here, by this user: `edgetrace replay OUT` may run its app
    return RecordResult(out, session, nodes, len(inputs), len(stored), time.monotonic() - started, failures,
                        drained, found)


def _audit_findings(work: Path) -> list[dict[str, object]]:
    """Every agent's audit file, as one list in a stable order (line, call, node)."""
    found: list[dict[str, object]] = []
    for path in sorted(work.glob("audit-*.json")):
        try:
            found += json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TransportError(f"an agent's audit file {path.name} is unreadable: {exc}") from None
    return sorted(found, key=lambda f: (str(f["at"]), str(f["call"]), str(f["node"])))


def _check_artifacts(scenario: Scenario) -> None:
    """Load every model and compile every policy before anything starts: a broken artifact is
    one line and exit 2 here, not an error in every trace of the recording."""
    from edgetrace.agents._steps import Artifacts
    from edgetrace.agents._world import MemoryWorld

    artifacts = Artifacts(scenario.app, MemoryWorld())
    try:
        artifacts.load_all()
    finally:
        artifacts.close()


def _settle(grid: GridProfile) -> float:
    """The profile's horizon: a timer due further away than this does not hold the run open."""
    worst = max([grid.default.latency_max, grid.default.spike_max]
                + [max(p.latency_max, p.spike_max) for _, _, p in grid.links])
    return min(8.0, 1.5 + 2 * worst / 1e9)


async def _drive(nodes: list[str], ports: dict[str, int], inputs: list[ScheduledInput],
                 agents: dict[str, subprocess.Popen[str]], *, horizon_s: float, timeout_s: float,
                 progress: Callable[[int, int], None] | None, token: str) -> tuple[int, Drained]:
    writers = {}
    for node in nodes:
        _, writer = await asyncio.open_connection("127.0.0.1", ports[node])
        writer.write(encode_peer_hello(token, "driver"))  # the agents take nothing from an unauthenticated link
        writers[node] = writer
    epoch = time.time_ns()
    for node, writer in writers.items():
        writer.write(encode_message(Message(kind=MessageKind.CONTROL, src="driver", dst=node, topic="epoch",
                                            payload=epoch)))
        await writer.drain()
    start = time.monotonic()
    for i, item in enumerate(inputs):
        wait = start + item.at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        writer = writers[item.node]
        writer.write(encode_message(Message(kind=MessageKind.INPUT, src="driver", dst=item.node, topic=item.topic,
                                            trace=item.trace, payload=item.payload)))
        await writer.drain()
        if progress:
            progress(i + 1, len(inputs))
    try:
        drained = await _drain(writers, agents, len(inputs), horizon_s=horizon_s, timeout_s=timeout_s)
    finally:
        for writer in writers.values():
            writer.close()
    return epoch, drained


async def _drain(writers: dict[str, asyncio.StreamWriter], agents: dict[str, subprocess.Popen[str]],
                 inputs: int, *, horizon_s: float, timeout_s: float) -> Drained:
    """Poll every agent's status until the whole run is quiet twice in a row, or the cap."""
    loop = asyncio.get_running_loop()
    began = time.monotonic()
    deadline = began + timeout_s
    last: tuple[int, int, int] | None = None
    poll = 0
    while True:
        poll += 1
        for node, writer in writers.items():
            writer.write(encode_message(Message(kind=MessageKind.CONTROL, src="driver", dst=node, topic="status",
                                                payload=poll)))
        await asyncio.gather(*(w.drain() for w in writers.values()))
        states = {}
        for node, proc in agents.items():
            states[node] = await loop.run_in_executor(None, _status, proc, poll, node)
        busy = quiet_check(states, inputs, horizon_s)
        totals = (sum(s["posted"] - s["undeliverable"] for s in states.values()),
                  sum(s["received"] for s in states.values()), sum(s["inputs"] for s in states.values()))
        if not busy and totals == last:
            return Drained(True, time.monotonic() - began, poll)
        last = None if busy else totals
        if time.monotonic() >= deadline:
            return Drained(False, time.monotonic() - began, poll, busy or ["messages still arriving"])
        await asyncio.sleep(0.05)


def quiet_check(states: dict[str, dict[str, Any]], inputs: int, horizon_s: float) -> list[str]:
    """What keeps the run from being over, in words (empty: every node is idle, nothing is in
    flight, every spool is acknowledged, no timer is due within `horizon_s`)."""
    busy = []
    for node, s in sorted(states.items()):
        said = list(s["busy"])
        due = s.get("next_timer_s")
        if due is not None and due <= horizon_s:
            said.append(f"a timer due in {due:.1f}s")
        if s["unacked"]:
            said.append(f"{s['unacked']} span(s) not yet acknowledged by the hub")
        if said:
            busy.append(f"{node}: {', '.join(said)}")
    posted = sum(s["posted"] - s["undeliverable"] for s in states.values())
    received = sum(s["received"] for s in states.values())
    if posted > received:
        busy.append(f"{posted - received} message(s) between nodes in flight")
    taken = sum(s["inputs"] for s in states.values())
    if taken < inputs:
        busy.append(f"{inputs - taken} input(s) not yet taken in")
    return busy


def _status(proc: subprocess.Popen[str], poll: int, node: str) -> dict[str, Any]:
    """The agent's answer to status poll `poll` (its stdout line `status {json}`)."""
    deadline = time.monotonic() + 15
    while True:
        line = _readline(proc, deadline, f"agent {node}")
        if not line.startswith("status "):
            continue
        try:
            state: dict[str, Any] = json.loads(line[len("status "):])
        except ValueError:
            continue
        if state.get("poll") == poll:
            return state


async def _seal(hub: tuple[str, int], token: str, session: str, manifest: Manifest) -> None:
    reader, writer = await asyncio.open_connection(*hub)
    try:
        await write_frame(writer, encode_hub(Hello(token=token, node="driver", session=session, manifest=manifest)))
        body = await asyncio.wait_for(read_frame(reader), 10)
        if body is None:
            raise TransportError("the hub closed the connection while sealing")
        decode_hub(body)
        await write_frame(writer, encode_hub(Seal(session=session)))
        await asyncio.wait_for(read_frame(reader), 10)
    except EdgeTraceError:
        raise
    finally:
        writer.close()
