"""A full disk neither corrupts nor duplicates (issue 14, defect 4).

On a failed write the session writer cuts the file back to the end of its last complete
frame; the hub acknowledges nothing it did not store, answers Busy with the reason until
space returns, and then takes the rest exactly once. The tmpfs test is the real thing (a
2 MiB filesystem that fills up under two agents) and needs root to mount it; it skips
cleanly otherwise.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace import Manifest, Session, SessionWriter, Span, SpanKind
from edgetrace._errors import StorageError
from edgetrace._hub_protocol import HubProtocol
from edgetrace._store import MemorySessionStore
from edgetrace._transport import MemoryTransport
from edgetrace.agents import Recorder
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool

TOKEN = "disk"
E2E = Path(__file__).resolve().parents[1] / "e2e"


def _spans(node: str, seqs: range) -> list[Span]:
    return [Span(node=node, seq=s, kind=SpanKind.LOG, name="x", trace=f"{node}{s}", attrs={"pad": "p" * 200})
            for s in seqs]


def test_a_short_write_on_a_full_disk_is_cut_back_to_the_last_frame(tmp_path, monkeypatch):
    import edgetrace._writer as writer_module

    path = tmp_path / "s.ets"
    real_write = os.write
    full = {"on": False}

    def short_write(fd: int, data: bytes | memoryview) -> int:
        if not full["on"]:
            return real_write(fd, data)
        if full["on"] == "half":  # what a disk does as it fills: part of the write, then ENOSPC
            full["on"] = "full"
            return real_write(fd, bytes(data)[: max(1, len(data) // 2)])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer_module.os, "write", short_write)
    with SessionWriter(path, Manifest(session_id="s", app="t")) as w:
        w.append(_spans("a", range(1, 11)))
        good = path.stat().st_size
        full["on"] = "half"
        with pytest.raises(StorageError, match="is full"):
            w.append(_spans("a", range(11, 21)))
        assert path.stat().st_size == good, "a partial frame was left behind"
        with pytest.raises(StorageError):
            w.append(_spans("a", range(11, 21)))
        assert path.stat().st_size == good
        full["on"] = False  # space is back: the same writer continues
        w.append(_spans("a", range(11, 21)))
    session = Session(path)
    assert [s.seq for s in session.spans] == list(range(1, 21)) and not session.damage


def test_a_full_disk_acknowledges_nothing_unstored_and_resumes_when_space_returns(tmp_path):
    store = MemorySessionStore(capacity=40_000)
    hub = HubProtocol(store, token=TOKEN)
    spool = Spool(tmp_path / "a.spool")
    rec = Recorder("a", spool)
    for i in range(400):
        rec.record(SpanKind.LOG, "x", trace=f"t{i}", attrs={"pad": os.urandom(100).hex()})  # incompressible
    spool.flush()

    async def main() -> None:
        shipper = Shipper(spool, MemoryTransport(hub), token=TOKEN, node="a", session="s1", batch=20,
                          backoff=(0.001, 0.01))
        shipper.start()
        for _ in range(400):
            await asyncio.sleep(0.005)
            if hub.stats.busy >= 3:
                break
        assert hub.stats.busy >= 3, "the hub never refused a batch for the full disk"
        stored = [s.seq for s in store.read("s1").spans]
        assert spool.acked <= len(stored) < 400, "acknowledged more than the disk holds"
        assert stored == list(range(1, len(stored) + 1)) and not store.read("s1").damage
        store.capacity = None  # space returns
        assert await shipper.flush(20)
        await shipper.stop()

    asyncio.run(main())
    session = store.read("s1")
    assert [s.seq for s in session.spans] == list(range(1, 401)) and not session.damage
    assert hub.stats.duplicates == 0
    spool.close()


def test_the_hub_names_the_disk_when_it_cannot_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = subprocess.run([sys.executable, "-m", "edgetrace", "hub", "--listen", "127.0.0.1:0", "--data",
                        str(blocker / "data")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot create the data folder" in r.stderr and "listen" not in r.stderr, r.stderr


# --- the real thing: a 2 MiB tmpfs ------------------------------------------------------------------


@pytest.fixture()
def tmpfs(tmp_path: Path):
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _acked(state: Path, node: str) -> set[str]:
    """Every blob tag the hub acknowledged to `node` (crash_agent's log; no restarts here)."""
    recorded: dict[int, str] = {}
    acked = 0
    for line in (state / f"{node}.log").read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "r":
            seq, _, tag = rest.partition(" ")
            recorded[int(seq)] = tag
        elif kind == "a" and rest.strip().isdigit():
            acked = max(acked, int(rest))
    return {tag for seq, tag in recorded.items() if seq <= acked}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_hub_on_a_filling_tmpfs_neither_corrupts_nor_duplicates(tmpfs, tmp_path, seed):
    rng = random.Random(seed)
    filler = tmpfs / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(tmpfs).free - rng.randint(40_000, 100_000)))  # the hub gets 40-100 KB
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "EDGETRACE_TOKEN": TOKEN}
    hub = subprocess.Popen([sys.executable, "-m", "edgetrace", "hub", "--listen", f"127.0.0.1:{port}", "--data",
                            str(tmpfs / "data")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    state = tmp_path / "state"
    state.mkdir()
    agents = {}
    try:
        assert hub.stdout is not None and "listening" in hub.stdout.readline()
        for node in ("a", "b"):
            agents[node] = subprocess.Popen(
                [sys.executable, str(E2E / "crash_agent.py"), str(tmp_path / f"{node}.spool"), f"127.0.0.1:{port}",
                 node, "disk", TOKEN, "1500", "1", str(state)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env)
        data = tmpfs / "data" / "disk.ets"
        for _ in range(600):  # until the disk is full and the hub has been refusing for a while
            if hub.poll() is not None or all(a.poll() is not None for a in agents.values()):
                break
            if shutil.disk_usage(tmpfs).free < 8 * 1024 and data.exists():  # full, to the last pages
                break
            subprocess.run(["sleep", "0.05"])
        subprocess.run(["sleep", str(rng.uniform(0.5, 1.5))])
        assert hub.poll() is None, "the hub died on a full disk"
        filler.unlink()  # space returns
        for node, agent in agents.items():
            assert agent.wait(timeout=120) == 0, f"agent {node} did not finish once space returned"
    finally:
        for agent in agents.values():
            if agent.poll() is None:
                agent.kill()
                agent.wait()
        hub.send_signal(signal.SIGTERM)
        _, err = hub.communicate(timeout=30)
    assert "full" in err, f"the hub never said the disk was full ({shutil.disk_usage(tmpfs)}, {err[-300:]!r})"
    session = Session(tmpfs / "data" / "disk.ets")
    assert not session.damage
    for node in ("a", "b"):
        spans = [s for s in session.spans if s.node == node]
        tags = [session.blob(s.blobs["input"]).decode() for s in spans]
        assert len(tags) == len(set(tags)) == 1500, f"{node}: {len(tags)} stored, {len(set(tags))} distinct"
        assert [s.seq for s in spans] == list(range(1, 1501))
        assert not _acked(state, node) - set(tags)
