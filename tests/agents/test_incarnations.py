"""A lost or rolled-back spool never loses new spans (issue 14, defect 3).

Each opening of a spool is a new incarnation; the hub keys what it holds by (incarnation,
seq), so new spans with reused numbers are stored (after what the session holds), and the
hub reports the rollback. An agent that has a recorder to tell rebases, so its later spans
need no translation.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from edgetrace import Session, SpanKind
from edgetrace._discovery import data_dir
from edgetrace._frames import FILE_HEADER_SIZE, ScanResult, scan_frames
from edgetrace._hub_protocol import HubProtocol
from edgetrace._store import MemorySessionStore
from edgetrace._transport import MemoryTransport
from edgetrace.agents import Recorder
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool

TOKEN = "t"


class Agent:
    """One run of an agent process: a spool opened (a new incarnation), a recorder, a shipper."""

    def __init__(self, path: Path, hub: HubProtocol, *, rebase: bool = True, node: str = "a") -> None:
        self.spool = Spool(path)
        self.recorder = Recorder(node, self.spool)
        self.recorder.resume(self.spool.last_seq, self.spool.clock)
        self.node = node
        self.hub = hub
        self.rebase = rebase

    def record(self, n: int, tag: str) -> None:
        for _ in range(n):
            seq = self.recorder.seq + 1
            self.recorder.record(SpanKind.LOG, "step", trace=f"{tag}-{seq}",
                                 blobs={"input": self.recorder.blob(f"{tag}:{seq}".encode())})
        self.spool.flush()

    def _rebase(self, after: int) -> None:
        self.recorder.resume(after, self.recorder.clock_dict())

    async def ship(self, transport: MemoryTransport | None = None) -> None:
        shipper = Shipper(self.spool, transport or MemoryTransport(self.hub), token=TOKEN, node=self.node,
                          session="s1", backoff=(0.001, 0.01), on_rebase=self._rebase if self.rebase else None)
        shipper.start()
        assert await shipper.flush(10)
        await shipper.stop()

    def close(self) -> None:
        self.spool.close()


def _tags(store: MemorySessionStore) -> list[str]:
    session = store.read("s1")
    return [session.blob(s.blobs["input"]).decode() for s in session.spans]


def _stored(store: MemorySessionStore) -> list[int]:
    return [s.seq for s in store.read("s1").spans]


@pytest.fixture
def hub() -> HubProtocol:
    return HubProtocol(MemorySessionStore(), token=TOKEN)


@pytest.mark.parametrize("rebase", [True, False])
def test_a_lost_spool_is_a_new_incarnation_and_its_spans_are_stored(tmp_path, hub, rebase, caplog):
    async def main() -> None:
        first = Agent(tmp_path / "a.spool", hub, rebase=rebase)
        first.record(60, "one")
        await first.ship()
        first.close()
        os.unlink(tmp_path / "a.spool")  # the spool is gone (or the agent starts in another folder)
        second = Agent(tmp_path / "a.spool", hub, rebase=rebase)
        assert second.spool.last_seq == 0
        second.record(60, "two")
        await second.ship()
        second.record(5, "three")  # after the rebase (if any): numbered past the stream
        await second.ship()
        second.close()

    with caplog.at_level(logging.WARNING, logger="edgetrace.hub"):
        asyncio.run(main())
    store = hub.store
    assert isinstance(store, MemorySessionStore)
    tags = _tags(store)
    assert len(tags) == len(set(tags)) == 125, "every span stored, none twice"
    assert {t.split(":")[0] for t in tags} == {"one", "two", "three"}
    assert _stored(store) == list(range(1, 126)), "the node's stream stays one contiguous stream"
    assert hub.stats.rollbacks == 1 and "reused seqs" in caplog.text
    session = store.read("s1")
    reused = [m for m in session.incarnations if m.reused]
    assert len(reused) == 1 and reused[0].reused == 60 and reused[0].base == 61
    if rebase:  # the spans after the rebase are stored under the numbers the agent gave them
        assert not [m for m in session.incarnations if m.base > 121 and m.reused]
        assert session.incarnations[-1].restart is False and session.incarnations[-1].start == 121


@pytest.mark.parametrize("cut", ["frame", "mid-frame"])
def test_a_spool_cut_in_its_last_10_percent_loses_no_new_span(tmp_path, hub, cut):
    """What `--sync never` and a power cut can leave: the spool's tail gone, the hub holding it."""
    path = tmp_path / "a.spool"

    async def main() -> None:
        first = Agent(path, hub)
        first.record(60, "one")
        await first.ship()
        first.close()
        data = path.read_bytes()
        ends = [f.end for f in scan_frames(data, FILE_HEADER_SIZE, path=path) if not isinstance(f, ScanResult)]
        keep = int(len(data) * 0.9)
        keep = max(e for e in ends if e <= keep) if cut == "frame" else keep
        path.write_bytes(data[:keep])
        second = Agent(path, hub)
        assert second.spool.last_span < 60
        second.record(60, "two")
        await second.ship()
        second.close()

    asyncio.run(main())
    store = hub.store
    assert isinstance(store, MemorySessionStore)
    tags = _tags(store)
    assert sum(t.startswith("two:") for t in tags) == 60, "every new span is stored"
    assert sum(t.startswith("one:") for t in tags) == 60 and len(tags) == len(set(tags))
    assert _stored(store) == list(range(1, 121)) and hub.stats.rollbacks == 1


def test_a_restart_with_an_intact_spool_is_an_incarnation_readers_find(tmp_path, hub):
    path = tmp_path / "a.spool"

    async def main() -> None:
        for run, n in enumerate((30, 20, 10)):
            agent = Agent(path, hub)
            agent.record(n, f"run{run}")
            if run < 2:
                agent.record(0, "")
            await agent.ship()
            agent.close()

    asyncio.run(main())
    store = hub.store
    assert isinstance(store, MemorySessionStore)
    session = store.read("s1")
    assert _stored(store) == list(range(1, 61)) and hub.stats.rollbacks == 0
    assert session.restarts("a") == [1, 31, 51], "where the node restarted, without decoding a record"
    assert all(m.reused == 0 for m in session.incarnations)


def test_a_restarted_hub_rebuilds_incarnations_from_the_session(tmp_path):
    """Dedup by (incarnation, seq) survives a hub restart: it is in the file."""
    store = MemorySessionStore()
    hub = HubProtocol(store, token=TOKEN)
    path = tmp_path / "a.spool"

    async def main() -> None:
        nonlocal hub
        first = Agent(path, hub)
        first.record(40, "one")
        await first.ship()
        first.close()
        os.unlink(path)
        hub = HubProtocol(MemorySessionStore(store.snapshot()), token=TOKEN)  # the hub restarted
        second = Agent(path, hub, rebase=False)
        second.record(40, "two")
        await second.ship()
        await second.ship()  # a reconnect resends nothing new
        second.close()

    asyncio.run(main())
    again = hub.store
    assert isinstance(again, MemorySessionStore)
    tags = _tags(again)
    assert len(tags) == len(set(tags)) == 80 and _stored(again) == list(range(1, 81))


def test_resends_of_an_old_incarnation_are_still_duplicates(tmp_path, hub):
    """An ack lost before the restart: the same spans come again under their old incarnation."""
    path = tmp_path / "a.spool"

    async def main() -> None:
        first = Agent(path, hub)
        first.record(25, "one")
        await first.ship()
        first.spool.acked = 0  # the spool never heard the acks
        first.close()
        second = Agent(path, hub)
        second.spool.acked = 0
        second.record(5, "two")
        await second.ship()
        second.close()

    asyncio.run(main())
    assert _stored(hub.store) == list(range(1, 31)) and hub.stats.records == 30  # type: ignore[arg-type]


def test_the_default_spool_lives_in_the_nodes_data_folder(tmp_path, monkeypatch):
    from edgetrace.agents._agent import AgentConfig, spool_root
    from edgetrace.cli._main import build_parser

    monkeypatch.setenv("EDGETRACE_DATA", str(tmp_path / "data"))
    assert spool_root() == data_dir() / "spool" == tmp_path / "data" / "spool"
    assert AgentConfig(app_ref="x:y", node="n", hub=("h", 1), session="s").spool_dir is None
    args = build_parser().parse_args(["agent", "--app", "x:y", "--node", "n", "--session", "s"])
    assert args.spool is None, "the CLI default is the data folder, not a folder relative to the cwd"


def test_format_2_is_written_format_1_is_read_and_upgraded_when_continued(tmp_path):
    import shutil

    from edgetrace import FORMAT_VERSION
    from edgetrace._records import READS_VERSIONS
    from edgetrace._store import FileSessionStore

    assert FORMAT_VERSION == 2 and READS_VERSIONS == (1, 2, 3)
    data = Path(__file__).resolve().parents[1] / "data" / "agri-demo.ets"
    old = Session(data)
    assert old.version == 1 and old.incarnations == []
    copy = tmp_path / "d" / "agri.ets"
    copy.parent.mkdir()
    shutil.copy(data, copy)
    store = FileSessionStore(copy.parent)
    writer = store.open("agri")  # a hub continuing a format-1 session: header upgraded in place
    node = sorted(writer.last_seq)[0]
    assert writer.streams[node].current == "" and writer.last_seq[node] == writer.streams[node].high
    store.close()
    again = Session(copy)
    assert again.version == 2 and [s.ref for s in again.spans] == [s.ref for s in old.spans]
