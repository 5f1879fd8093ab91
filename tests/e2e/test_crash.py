"""kill -9 agents and the hub at seeded random moments: every record is stored exactly once.

Real processes, real TCP, real SIGKILL. After each run every node's stream in the session
is 1..N with no gap and no duplicate, although agents resent what they could not confirm
and the hub lost whatever it had not yet acknowledged.
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
             "--data", str(self.tmp / "data"), "--token", TOKEN],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env, cwd=self.tmp)
        assert self.hub.stdout is not None
        self.hub.stdout.readline()  # "listening on ..."

    def start_agent(self, node: str) -> None:
        self.agents[node] = subprocess.Popen(
            [sys.executable, str(HERE / "crash_agent.py"), str(self.tmp / f"{node}.spool"), f"127.0.0.1:{self.port}",
             node, "crash", TOKEN, str(SPANS), "2"],
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
    for span in session.spans:
        assert session.blob(span.blobs["input"]) == f"{span.node}:{span.seq}".encode()
