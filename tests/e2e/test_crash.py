"""kill -9 agents and the hub at seeded random moments: every record is stored exactly once.

Real processes, real TCP, real SIGKILL. After each run every node's stream in the session
is 1..N with no gap and no duplicate, although agents resent what they could not confirm
and the hub lost whatever it had not yet acknowledged. The second test also deletes an
agent's spool or cuts its last 10 % between a kill and the restart (a lost disk, a power cut
under `--sync never`): every span the hub acknowledged is stored exactly once, and so is
every span recorded after — none is dropped as a "duplicate" of a reused number.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgetrace import Session

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
TOKEN = "crash-test-token"
NODES = ["a", "b", "c"]
SPANS = 800


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Grid:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = _port()
        self.hub: subprocess.Popen[bytes] | None = None
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start_hub(self) -> None:
        self.hub = subprocess.Popen(
            [sys.executable, "-m", "edgetrace", "hub", "--listen", f"127.0.0.1:{self.port}",
             "--data", str(self.tmp / "data")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**self.env, "EDGETRACE_TOKEN": TOKEN},
            cwd=self.tmp)
        assert self.hub.stdout is not None
        self.hub.stdout.readline()  # "listening on ..."

    def start_agent(self, node: str, state: Path | None = None) -> None:
        self.agents[node] = subprocess.Popen(
            [sys.executable, str(HERE / "crash_agent.py"), str(self.tmp / f"{node}.spool"), f"127.0.0.1:{self.port}",
             node, "crash", TOKEN, str(SPANS), "2", *([str(state)] if state else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env, cwd=self.tmp)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def stop(self) -> None:
        for proc in [*self.agents.values(), self.hub]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc is not None and proc.stdout:
                proc.stdout.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_agents_and_hub_at_random_points(tmp_path, seed):
    rng = random.Random(seed)
    grid = Grid(tmp_path)
    trials = 0
    try:
        grid.start_hub()
        for node in NODES:
            grid.start_agent(node)
        deadline = time.monotonic() + 90
        while trials < 7 and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.05, 0.4))
            victim = rng.choice([*NODES, "hub"])
            if victim == "hub":
                grid.kill(grid.hub)  # mid-write, mid-ack: whatever it was doing
                time.sleep(rng.uniform(0.0, 0.5))  # agents are cut off: a partition
                grid.start_hub()
                trials += 1
            elif grid.agents[victim].poll() is None:
                grid.kill(grid.agents[victim])
                grid.start_agent(victim)
                trials += 1
        for node in NODES:
            code = grid.agents[node].wait(timeout=max(1, deadline + 30 - time.monotonic()))
            if code != 0:  # killed after finishing is fine; a live failure is not
                grid.start_agent(node)
                assert grid.agents[node].wait(timeout=60) == 0
        grid.hub.send_signal(signal.SIGTERM)
        grid.hub.wait(timeout=20)
    finally:
        grid.stop()
    assert trials == 7
    session = Session(tmp_path / "data" / "crash.ets")
    for node in NODES:
        seqs = [s.seq for s in session.spans if s.node == node]
        assert seqs == list(range(1, SPANS + 1)), f"{node}: stream is not 1..{SPANS} exactly once"
    for span in session.spans:  # "NODE:RUN:LOCAL_SEQ": no rollback here, so local = stored
        node, _run, local = session.blob(span.blobs["input"]).decode().split(":")
        assert (node, int(local)) == (span.node, span.seq)


TRIALS = int(os.environ.get("EDGETRACE_CRASH_TRIALS", "8"))


def _acknowledged(state: Path, node: str) -> set[str]:
    """The blob of every span the hub acknowledged to `node`, from its log of records and acks."""
    found: set[str] = set()
    current: dict[int, str] = {}  # local seq -> the span last recorded under it
    log = state / f"{node}.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, _, rest = line.partition(" ")
        if kind == "r":
            seq, _, tag = rest.partition(" ")
            current[int(seq)] = tag
        elif kind == "s":  # a restart: the spool ends here (cut or deleted beyond)
            current = {seq: tag for seq, tag in current.items() if seq <= int(rest)}
        elif kind == "j":  # a rebase: the seqs it jumps over hold nothing
            lo, hi = map(int, rest.split())
            current = {seq: tag for seq, tag in current.items() if not lo < seq <= hi}
        elif kind == "a" and rest.strip().isdigit():
            acked = int(rest)
            found.update(tag for seq, tag in current.items() if seq <= acked)
    return found


def _cut_tail(path: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(16, int(len(data) * rng.uniform(0.9, 1.0)))])


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_spools_deleted_or_rolled_back_between_restarts_lose_no_acknowledged_span(tmp_path, seed):
    rng = random.Random(seed)
    grid = Grid(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    done = {"kill": 0, "delete": 0, "rollback": 0, "hub": 0}
    try:
        grid.start_hub()
        for node in NODES:
            grid.start_agent(node, state)
        deadline = time.monotonic() + 120
        while sum(done.values()) < TRIALS and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.1, 0.5))
            victim = rng.choice([*NODES, "hub"])
            if victim == "hub":
                grid.kill(grid.hub)
                time.sleep(rng.uniform(0.0, 0.3))
                grid.start_hub()
                done["hub"] += 1
            elif grid.agents[victim].poll() is None:
                grid.kill(grid.agents[victim])
                what = rng.choice(["kill", "delete", "rollback"])
                spool = tmp_path / f"{victim}.spool"
                if what == "delete":
                    spool.unlink(missing_ok=True)
                elif what == "rollback" and spool.exists():
                    _cut_tail(spool, rng)
                grid.start_agent(victim, state)
                done[what] += 1
        for node in NODES:
            code = grid.agents[node].wait(timeout=max(1, deadline + 60 - time.monotonic()))
            if code != 0:
                grid.start_agent(node, state)
                assert grid.agents[node].wait(timeout=90) == 0
        grid.hub.send_signal(signal.SIGTERM)
        grid.hub.wait(timeout=20)
    finally:
        grid.stop()
    print(f"seed {seed}: trials {done}")
    assert sum(done.values()) == TRIALS
    session = Session(tmp_path / "data" / "crash.ets")
    for node in NODES:
        spans = [s for s in session.spans if s.node == node]
        tags = [session.blob(s.blobs["input"]).decode() for s in spans]
        assert len(tags) == len(set(tags)), f"{node}: a span stored twice"
        assert [s.seq for s in spans] == sorted({s.seq for s in spans}), f"{node}: a seq stored twice"
        lost = _acknowledged(state, node) - set(tags)
        assert not lost, f"{node}: {len(lost)} acknowledged spans are not in the session"
