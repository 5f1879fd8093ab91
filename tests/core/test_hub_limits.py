"""What a connection can cost the hub before and after it authenticates (defects 7 and 8).

A small hello limit before the token is checked, handshake and idle deadlines, caps on
connections (the oldest unauthenticated one makes room), a bounded number of open session
files, a graceful "busy" — so a crowd of idle or hostile sockets neither exhausts the hub's
memory nor its file descriptors, and a good agent still ships.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgetrace import Session, SpanKind
from edgetrace._gate import Limits
from edgetrace._hub import Hub
from edgetrace._wire import Busy, Hello, Welcome, decode_hub, encode_hub, read_frame
from edgetrace.agents import Recorder
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool

TOKEN = "limits-token"


def _fill(spool: Spool, n: int) -> None:
    rec = Recorder("good", spool)
    rec.resume(spool.last_seq, spool.clock)
    for _ in range(n):
        rec.record(SpanKind.LOG, "step")
    spool.flush()


async def _ship(port: int, spool: Spool, timeout: float = 20) -> bool:
    shipper = Shipper(spool, ("127.0.0.1", port), token=TOKEN, node="good", session="s1", backoff=(0.02, 0.2),
                      timeout=2.0)
    shipper.start()
    ok = await shipper.flush(timeout)
    await shipper.stop()
    return ok


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_a_hello_may_not_claim_more_than_the_small_limit(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN)
        await hub.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
        writer.write(struct.pack(">I", 1024 * 1024) + b"\0" * 1000)  # a "hello" of 1 MiB, before any token
        await writer.drain()
        assert await _closed_within(reader, 5), "the hub waited for a megabyte from a stranger"
        writer.close()
        await asyncio.sleep(0)
        hub.close()

    asyncio.run(main())


def test_a_slow_or_silent_stranger_is_cut_off_at_the_handshake_deadline(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN, limits=Limits(handshake_timeout=0.5))
        await hub.start()
        silent = await asyncio.open_connection("127.0.0.1", hub.port)
        trickle = await asyncio.open_connection("127.0.0.1", hub.port)
        started = time.monotonic()
        hello = encode_hub(Hello(token=TOKEN, node="x", session="s1"))
        closed = False
        for byte in hello[:20]:  # one byte at a time, each well inside any per-read timeout
            try:
                trickle[1].write(bytes([byte]))
                await trickle[1].drain()
            except ConnectionError:
                closed = True
                break
            await asyncio.sleep(0.1)
        assert closed or await _closed_within(trickle[0], 3)
        assert await _closed_within(silent[0], 3)
        assert time.monotonic() - started < 6
        silent[1].close()
        trickle[1].close()
        hub.close()

    asyncio.run(main())


def test_an_idle_agent_is_let_go_and_simply_reconnects(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN, limits=Limits(idle_timeout=0.5))
        await hub.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
        writer.write(encode_hub(Hello(token=TOKEN, node="a", session="s1")))
        await writer.drain()
        assert isinstance(decode_hub(await read_frame(reader)), Welcome)
        assert await _closed_within(reader, 5)
        writer.close()
        spool = Spool(tmp_path / "good.spool")
        _fill(spool, 10)
        assert await _ship(hub.port, spool)
        spool.close()
        hub.close()

    asyncio.run(main())


def test_a_crowd_of_strangers_makes_room_for_a_real_agent(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN,
                  limits=Limits(max_pending=8, max_pending_per_peer=8, handshake_timeout=30))
        await hub.start()
        crowd = [await asyncio.open_connection("127.0.0.1", hub.port) for _ in range(40)]
        await asyncio.sleep(0.3)
        assert hub.gate.open <= 8 and hub.gate.evicted >= 32
        spool = Spool(tmp_path / "good.spool")
        _fill(spool, 50)
        assert await _ship(hub.port, spool)
        spool.close()
        for _, w in crowd:
            w.close()
        hub.close()

    asyncio.run(main())
    assert len(Session(tmp_path / "data" / "s1.ets").spans) == 50


def test_beyond_the_connection_cap_a_newcomer_is_told_the_hub_is_busy(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN, limits=Limits(max_connections=3))
        await hub.start()
        agents = []
        for i in range(3):
            r, w = await asyncio.open_connection("127.0.0.1", hub.port)
            w.write(encode_hub(Hello(token=TOKEN, node=f"n{i}", session="s1")))
            await w.drain()
            assert isinstance(decode_hub(await read_frame(r)), Welcome)
            agents.append(w)
        r, w = await asyncio.open_connection("127.0.0.1", hub.port)
        reply = decode_hub(await asyncio.wait_for(read_frame(r), 5))
        assert isinstance(reply, Busy) and "too many connections" in reply.reason
        assert await _closed_within(r, 5)
        w.close()
        for a in agents:
            a.close()
        hub.close()

    asyncio.run(main())


def _fds_under(folder: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
                count += 1
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
def test_hellos_naming_a_thousand_sessions_keep_a_bounded_number_of_files_open(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN, max_open=16)
        await hub.start()
        for i in range(300):
            r, w = await asyncio.open_connection("127.0.0.1", hub.port)
            w.write(encode_hub(Hello(token=TOKEN, node="n", session=f"s{i:04d}")))
            await w.drain()
            assert isinstance(decode_hub(await read_frame(r)), Welcome)
            w.close()
            await w.wait_closed()
        assert _fds_under(tmp_path / "data") <= 16
        # an evicted session is taken up again as it was
        spool = Spool(tmp_path / "good.spool")
        _fill(spool, 5)
        assert await _ship(hub.port, spool)
        spool.close()
        hub.close()

    asyncio.run(main())
    assert len(list((tmp_path / "data").glob("*.ets"))) == 301


# --- as a real process: memory and file descriptors under a crowd ----------------------------------


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _start_hub(tmp_path: Path, *, nofile: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    hub = subprocess.Popen([sys.executable, "-m", "edgetrace", "hub", "--listen", f"127.0.0.1:{port}", "--data",
                            str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           env={**os.environ, "EDGETRACE_TOKEN": TOKEN}, preexec_fn=limit)
    assert hub.stdout is not None
    hub.stdout.readline()
    hub.stdout.close()
    return hub, port


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmRSS from /proc")
def test_hub_memory_with_200_unauthenticated_connections(tmp_path):
    hub, port = _start_hub(tmp_path)
    figures: dict[str, float] = {"idle": 0.0}

    async def main() -> None:
        base = _rss_mib(hub.pid)
        conns = []
        for i in range(200):
            _, w = await asyncio.open_connection("127.0.0.1", port)
            if i % 2:  # half of them claim a 16 MiB hello and start sending it
                w.write(struct.pack(">I", 16 * 1024 * 1024) + b"\0" * (512 * 1024))
            conns.append(w)
        for w in conns:
            try:
                await asyncio.wait_for(w.drain(), 2)
            except (ConnectionError, TimeoutError):
                pass
        await asyncio.sleep(1.0)
        figures["idle"] = _rss_mib(hub.pid)
        figures["base"] = base
        spool = Spool(tmp_path / "good.spool")
        _fill(spool, 200)
        assert await _ship(port, spool), "a good agent still ships"
        spool.close()
        for w in conns:
            w.close()

    try:
        asyncio.run(main())
    finally:
        hub.terminate()
        hub.wait(timeout=20)
    print(f"hub RSS: {figures['base']:.1f} MiB at start, {figures['idle']:.1f} MiB with 200 unauthenticated "
          "connections")
    assert figures["idle"] <= 64, f"hub RSS {figures['idle']:.0f} MiB with 200 unauthenticated connections"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts descriptors in /proc")
def test_2000_connection_attempts_under_a_1024_fd_limit_and_a_good_agent_ships(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        pytest.skip("the test itself needs 4,096 descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    hub, port = _start_hub(tmp_path, nofile=1024)
    peak = 0
    figures = {"established": 0}

    async def knock() -> asyncio.StreamWriter | None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
            return writer
        except (OSError, TimeoutError):
            return None

    async def main() -> None:
        nonlocal peak
        crowd: list[asyncio.StreamWriter | None] = []
        for _ in range(20):  # 2,000 connections that stay open and say nothing
            crowd += await asyncio.gather(*(knock() for _ in range(100)))
            peak = max(peak, len(os.listdir(f"/proc/{hub.pid}/fd")))
        spool = Spool(tmp_path / "good.spool")
        _fill(spool, 300)
        shipping = asyncio.ensure_future(_ship(port, spool, timeout=30))
        while not shipping.done():
            peak = max(peak, len(os.listdir(f"/proc/{hub.pid}/fd")))
            await asyncio.sleep(0.05)
        figures["established"] = sum(w is not None for w in crowd)
        assert shipping.result(), "a good agent ships while 2,000 strangers knock"
        spool.close()
        for w in crowd:
            if w is not None:
                w.close()

    try:
        asyncio.run(main())
        assert hub.poll() is None, "the hub is still up"
    finally:
        hub.terminate()
        hub.wait(timeout=20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print(f"hub file descriptors: peak {peak} of 1024 under 2,000 connection attempts "
          f"({figures['established']} established)")
    assert peak < 1024
    assert len(Session(tmp_path / "data" / "s1.ets").spans) == 300
