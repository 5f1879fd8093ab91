"""One damaged byte in a spool costs that span, not the node (issue 14, defect 12).

What is intact — before the damage and after it — ships; the damaged range is quarantined,
the hub records it as lost (with why), and the agent says exactly how many spans it lost.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from edgetrace import SpanKind
from edgetrace._frames import FILE_HEADER_SIZE, Frame, FrameType, scan_frames
from edgetrace._hub_protocol import HubProtocol
from edgetrace._store import MemorySessionStore
from edgetrace._transport import MemoryTransport
from edgetrace.agents import Recorder
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool

TOKEN = "t"


def _fill(spool: Spool, n: int) -> None:
    rec = Recorder("a", spool)
    rec.resume(spool.last_seq, spool.clock)
    for _ in range(n):
        seq = rec.seq + 1
        rec.record(SpanKind.LOG, "step", trace=f"t{seq}", blobs={"input": rec.blob(f"payload {seq}".encode() * 20)})
    spool.flush()


def _frames(path: Path) -> list[Frame]:
    return [f for f in scan_frames(path.read_bytes(), FILE_HEADER_SIZE, path=path) if isinstance(f, Frame)]


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))


def _record_frame(path: Path, nth: int) -> Frame:
    return [f for f in _frames(path) if f.type is FrameType.RECORDS][nth - 1]


async def _ship(spool: Spool, hub: HubProtocol) -> Shipper:
    shipper = Shipper(spool, MemoryTransport(hub), token=TOKEN, node="a", session="s1", backoff=(0.001, 0.01))
    shipper.start()
    assert await shipper.flush(10), "the shipper must not be blocked by the damage"
    await shipper.stop()
    return shipper


def test_damage_found_at_startup_costs_only_the_damaged_span(tmp_path, caplog):
    path = tmp_path / "a.spool"
    spool = Spool(path)
    _fill(spool, 120)
    spool.close()
    frame = _record_frame(path, 60)
    _flip(path, frame.offset + 20)  # one byte of span 60's record
    hub = HubProtocol(MemorySessionStore(), token=TOKEN)
    with caplog.at_level(logging.ERROR):
        again = Spool(path)
        asyncio.run(_ship(again, hub))
    assert "1 span(s), seq 60–60, are lost" in caplog.text
    session = hub.store.read("s1")
    assert [s.seq for s in session.spans] == [*range(1, 60), *range(61, 121)]
    (lost,) = session.lost
    assert (lost.first, lost.last, lost.by) == (60, 60, "agent") and "damaged" in lost.reason
    assert again.stats()["lost"] == 1 and session.missing() == {}
    again.close()


def test_damage_while_the_agent_runs_ships_everything_else(tmp_path, caplog):
    path = tmp_path / "a.spool"
    spool = Spool(path)
    _fill(spool, 120)
    header = _record_frame(path, 37)
    _flip(path, header.offset + 2)  # its header's length: the frame cannot even be measured
    hub = HubProtocol(MemorySessionStore(), token=TOKEN)
    with caplog.at_level(logging.ERROR):
        asyncio.run(_ship(spool, hub))
    session = hub.store.read("s1")
    assert len(session.spans) == 119 and 37 not in {s.seq for s in session.spans}
    assert [(m.first, m.last) for m in session.lost] == [(37, 37)]
    assert "1 span(s), seq 37–37, are lost" in caplog.text
    spool.close()


def test_a_damaged_blob_costs_the_blob_not_the_span(tmp_path, caplog):
    path = tmp_path / "a.spool"
    spool = Spool(path)
    _fill(spool, 10)
    spool.close()
    blob = [f for f in _frames(path) if f.type is FrameType.BLOB][4]
    _flip(path, blob.offset + 40)
    hub = HubProtocol(MemorySessionStore(), token=TOKEN)
    with caplog.at_level(logging.ERROR):
        again = Spool(path)
        asyncio.run(_ship(again, hub))
    session = hub.store.read("s1")
    assert [s.seq for s in session.spans] == list(range(1, 11)) and not session.lost
    assert len(list(session.blob_ids())) == 9 and "blob(s)" in caplog.text
    again.close()


def test_damage_at_the_very_end_is_cut_and_a_new_incarnation_follows(tmp_path):
    path = tmp_path / "a.spool"
    spool = Spool(path)
    _fill(spool, 20)
    spool.close()
    last = _record_frame(path, 20)
    _flip(path, last.offset + 20)
    again = Spool(path)
    assert again.last_span == 19 and again.incarnation.start == 20
    again.close()
