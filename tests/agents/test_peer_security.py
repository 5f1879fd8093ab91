"""The agent's peer port follows the hub's rules (issue 14, defect 14).

A token is required to listen off loopback; an agent with a token takes nothing — no input,
no forged receive, no CONTROL `stop` — from a connection that did not present it, and an
authenticated peer can only speak as the node it said it is.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace._credentials import PeerSecurity
from edgetrace.agents import MemorySink
from edgetrace.agents._live import LiveWorld, encode_message, encode_peer_hello
from edgetrace.agents._message import Message, MessageKind

TOKEN = "peer-token"
ROOT = Path(__file__).resolve().parents[2]


def _world(**kw: object) -> tuple[LiveWorld, list[Message]]:
    got: list[Message] = []
    world = LiveWorld("n1", MemorySink(), epoch_ns=0, peers={}, security=PeerSecurity(token=TOKEN, **kw))  # type: ignore[arg-type]
    return world, got


def _hello(token: str, node: str) -> bytes:
    return encode_peer_hello(token, node)


def _input(src: str = "driver", **kw: object) -> bytes:
    return encode_message(Message(kind=MessageKind.INPUT, src=src, dst="n1", topic="frame", payload=1, **kw))  # type: ignore[arg-type]


async def _talk(port: int, *frames: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for frame in frames:
        writer.write(frame)
    await writer.drain()
    try:
        await asyncio.wait_for(reader.read(), 1.0)  # the agent hangs up on a bad peer
    except TimeoutError:
        pass
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("case", ["no hello", "wrong token", "forged sender", "forged clock"])
def test_nothing_is_taken_from_a_peer_that_did_not_prove_itself(case):
    async def main() -> list[Message]:
        world, got = _world()
        server = await world.serve(got.append, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stop = encode_message(Message(kind=MessageKind.CONTROL, src="driver", dst="n1", topic="stop"))
        frames = {
            "no hello": [_input(), stop],
            "wrong token": [_hello("guess", "driver"), _input(), stop],
            "forged sender": [_hello(TOKEN, "n2"), _input(src="n9"), stop],
            "forged clock": [_hello(TOKEN, "n2"), _input(src="n2", vc={"n9": -999})],
        }[case]
        await _talk(port, *frames)
        await asyncio.sleep(0.1)
        assert not world.stop_requested.is_set(), "an unauthenticated CONTROL stop ended the agent"
        server.close()
        return got

    assert asyncio.run(main()) == []


async def _shut(sender: LiveWorld, server: asyncio.Server) -> None:
    """Close the sender's links and the receiver's port, and wait until they are (no stray sockets)."""
    await sender.close_links()
    server.close()
    await server.wait_closed()


def test_an_authenticated_peer_is_heard():
    async def main() -> list[Message]:
        world, got = _world()
        server = await world.serve(got.append, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stop = encode_message(Message(kind=MessageKind.CONTROL, src="driver", dst="n1", topic="stop"))
        await _talk(port, _hello(TOKEN, "driver"), _input(), stop)
        await asyncio.sleep(0.1)
        assert world.stop_requested.is_set()
        server.close()
        return got

    (msg,) = asyncio.run(main())
    assert msg.src == "driver" and msg.topic == "frame"


def test_agents_talk_to_each_other_with_the_token():
    from edgetrace._credentials import PeerSecurity
    from edgetrace._records import Span, SpanKind

    async def main() -> list[Message]:
        got: list[Message] = []
        receiver = LiveWorld("n1", MemorySink(), epoch_ns=0, peers={}, security=PeerSecurity(token=TOKEN))
        server = await receiver.serve(got.append, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sender = LiveWorld("n2", MemorySink(), epoch_ns=0, peers={"n1": ("127.0.0.1", port)},
                           security=PeerSecurity(token=TOKEN))
        sender.transmit(Message(kind=MessageKind.SEND, src="n2", dst="n1", topic="hi"),
                        Span(node="n2", seq=1, kind=SpanKind.SEND, name="hi"))
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.02)
        await _shut(sender, server)
        return got

    (msg,) = asyncio.run(main())
    assert (msg.src, msg.topic) == ("n2", "hi")


def test_the_agent_refuses_to_listen_off_loopback_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "EDGETRACE_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "edgetrace", "agent", "--app", "edgetrace.scenarios.agri.scenario:app",
                        "--node", "tractor-01", "--session", "s", "--listen", "0.0.0.0:0", "--spool", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "without a token" in r.stderr, r.stderr


@pytest.mark.slow
def test_a_live_agent_is_not_stopped_by_a_stranger(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "EDGETRACE_TOKEN": TOKEN, "EDGETRACE_DATA": str(tmp_path / "data")}
    agent = subprocess.Popen([sys.executable, "-m", "edgetrace", "agent", "--app",
                              "edgetrace.scenarios.agri.scenario:app", "--node", "tractor-01", "--session", "s",
                              "--hub", "127.0.0.1:9", "--listen", f"127.0.0.1:{port}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert agent.stdout is not None and agent.stdout.readline().startswith("ready")
        stop = encode_message(Message(kind=MessageKind.CONTROL, src="driver", dst="tractor-01", topic="stop"))
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(stop)
        with pytest.raises(subprocess.TimeoutExpired):
            agent.wait(timeout=2)
    finally:
        agent.kill()
        agent.wait()
        for pipe in (agent.stdout, agent.stderr):
            if pipe is not None:
                pipe.close()
