"""A real partition: the agent lives in its own network namespace, joined to the hub by a veth
pair, and the link is taken down while it records. After the link comes back the agent
catches up and the hub holds every record exactly once.

Needs root and iproute2 (`ip netns`, veth); skipped elsewhere. `tc netem` is not used: this
machine kind's kernel may lack the netem qdisc, and link down/up is the fault that matters
for store-and-forward.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgetrace import Session

pytestmark = [pytest.mark.slow, pytest.mark.netns]

HERE = Path(__file__).resolve().parent
TOKEN = "netns-token"
SPANS = 300


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def veth():
    """Namespace `et-<pid>` with 10.<n>.0.2, joined by veth to the host's 10.<n>.0.1."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    tag = f"et{os.getpid() % 100000}"
    net = 64 + os.getpid() % 64
    host_if, ns_if = f"{tag}h", f"{tag}a"
    made = _ip("netns", "add", tag, check=False)
    if made.returncode != 0:
        pytest.skip(f"ip netns unavailable: {made.stderr.strip()}")
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", tag)
        _ip("addr", "add", f"10.{net}.0.1/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", tag, "ip", "addr", "add", f"10.{net}.0.2/24", "dev", ns_if)
        _ip("netns", "exec", tag, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", tag, "ip", "link", "set", "lo", "up")
        yield tag, host_if, f"10.{net}.0.1"
    finally:
        _ip("link", "del", host_if, check=False)
        _ip("netns", "del", tag, check=False)


def _port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _stored(path: Path) -> int:
    try:
        return len(Session(path).spans)
    except Exception:
        return 0


def test_agent_behind_a_downed_link_catches_up_exactly_once(veth, tmp_path):
    ns, host_if, hub_ip = veth
    port = _port(hub_ip)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    hub = subprocess.Popen(
        [sys.executable, "-m", "edgetrace", "hub", "--listen", f"{hub_ip}:{port}", "--data", str(tmp_path / "data"),
         "--fsync", "never"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**env, "EDGETRACE_TOKEN": TOKEN}, cwd=tmp_path)
    agent = None
    try:
        assert hub.stdout is not None
        hub.stdout.readline()
        agent = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(HERE / "crash_agent.py"), str(tmp_path / "a.spool"),
             f"{hub_ip}:{port}", "field-1", "part", TOKEN, str(SPANS), "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
        session = tmp_path / "data" / "part.ets"
        deadline = time.monotonic() + 30
        while _stored(session) < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _stored(session) >= 40, "the agent never reached the hub over the veth link"
        _ip("link", "set", host_if, "down")  # the partition: the agent keeps recording into its spool
        time.sleep(0.5)
        during = _stored(session)
        time.sleep(2.5)
        assert _stored(session) == during, "records crossed a link that was down"
        assert agent.poll() is None, "the agent should still be recording"
        _ip("link", "set", host_if, "up")
        _, err = agent.communicate(timeout=120)
        assert agent.returncode == 0, err.decode()[-2000:]
    finally:
        for proc in (agent, hub):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if hub.stdout:
            hub.stdout.close()
    spans = Session(tmp_path / "data" / "part.ets").spans
    assert [s.seq for s in spans] == list(range(1, SPANS + 1))
    assert during < SPANS, "the partition should have held records back"
