"""Shipping without sockets: the cursor by hand, then the Shipper over the in-memory transport."""

from __future__ import annotations

import asyncio

import pytest

from edgetrace import FrameError, Manifest, SpanKind
from edgetrace._frames import FrameType, encode_frame
from edgetrace._hub_protocol import HubProtocol
from edgetrace._store import MemorySessionStore
from edgetrace._transport import HubLink, MemoryTransport, Transport
from edgetrace._wire import Ack, HubMessage, Records, Refused, Welcome
from edgetrace.agents import Recorder
from edgetrace.agents._cursor import CursorState, ShipperCursor
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool

TOKEN = "s3cret"


def _record(spool: Spool, n: int, node: str = "a") -> None:
    rec = Recorder(node, spool)
    rec.resume(spool.last_seq, spool.clock)
    for _ in range(n):
        seq = rec.seq + 1
        rec.record(SpanKind.LOG, "step", trace=f"{node}-{seq}", blobs={"input": rec.blob(f"{node}:{seq}".encode())})
    spool.flush()


def _stream(store: MemorySessionStore, node: str = "a", session: str = "s1") -> list[int]:
    return [s.seq for s in store.read(session).spans if s.node == node]


@pytest.fixture
def spool(tmp_path):
    spool = Spool(tmp_path / "a.spool")
    yield spool
    spool.close()


@pytest.fixture
def store() -> MemorySessionStore:
    return MemorySessionStore()


@pytest.fixture
def hub(store) -> HubProtocol:
    return HubProtocol(store, token=TOKEN)


def _cursor(spool: Spool, **kw: object) -> ShipperCursor:
    return ShipperCursor(spool, token=TOKEN, node="a", session="s1", **kw)  # type: ignore[arg-type]


async def _ship(spool: Spool, transport: Transport, **kw: object) -> Shipper:
    shipper = Shipper(spool, transport, token=TOKEN, node="a", session="s1", backoff=(0.001, 0.01), **kw)  # type: ignore[arg-type]
    shipper.start()
    assert await shipper.flush(10)
    await shipper.stop()
    return shipper


# --- the cursor, by hand ----------------------------------------------------------------------------


def test_the_cursor_sends_what_the_hub_lacks_and_moves_the_spool_cursor_on_acks(spool):
    _record(spool, 12)
    cursor = _cursor(spool, batch=5)
    hello = cursor.hello()
    assert (hello.node, hello.session, cursor.state) == ("a", "s1", CursorState.GREETING)
    cursor.receive(Welcome(last_seq=3))  # the hub has 1..3 already
    assert spool.acked == 3 and cursor.state is CursorState.READY
    batch = cursor.next_batch()
    assert isinstance(batch, Records) and batch.zlib and len(batch.blobs) == 5
    cursor.receive(Ack(node="a", seq=8))
    assert spool.acked == 8
    cursor.next_batch()
    cursor.receive(Ack(node="a", seq=12))
    assert cursor.next_batch() is None and spool.acked == 12 and cursor.state is CursorState.READY


def test_a_welcome_behind_the_spool_means_resend_but_the_spool_cursor_never_goes_back(spool, hub, store):
    _record(spool, 6)
    spool.ack(6)  # acked by a hub that then lost its unsynced tail
    cursor = _cursor(spool)
    conn = hub.connect()
    cursor.receive(conn.receive(cursor.hello()))  # the hub has nothing
    batch = cursor.next_batch()
    assert batch is not None
    cursor.receive(conn.receive(batch))
    assert _stream(store) == [1, 2, 3, 4, 5, 6] and spool.acked == 6


def test_the_cursor_refuses_misuse_and_replies_out_of_place(spool):
    cursor = _cursor(spool)
    with pytest.raises(RuntimeError, match="cannot send records while idle"):
        cursor.next_batch()
    cursor.hello()
    with pytest.raises(FrameError, match="expected welcome, got Ack"):
        cursor.receive(Ack(node="a", seq=1))
    cursor.lost()
    cursor.hello()
    cursor.receive(Welcome(last_seq=0))
    with pytest.raises(FrameError, match="unexpected Welcome"):
        cursor.receive(Welcome(last_seq=0))
    _record(spool, 1)
    cursor.next_batch()
    with pytest.raises(FrameError, match="expected ack, got Welcome"):
        cursor.receive(Welcome(last_seq=0))


def test_a_refusal_is_final(spool):
    cursor = _cursor(spool)
    cursor.hello()
    cursor.receive(Refused(reason="missing or wrong token"))
    cursor.lost()
    assert cursor.state is CursorState.REFUSED and cursor.refused == "missing or wrong token"
    with pytest.raises(RuntimeError):
        cursor.hello()


def test_cursor_and_hub_protocol_talk_directly(spool, hub, store):
    _record(spool, 1234)
    cursor = _cursor(spool, batch=100, manifest=Manifest(session_id="s1", app="toy", nodes=["a"]))
    conn = hub.connect()
    cursor.receive(conn.receive(cursor.hello()))
    while (batch := cursor.next_batch()) is not None:
        cursor.receive(conn.receive(batch))
    cursor.receive(conn.receive(cursor.seal()))
    session = store.read("s1")
    assert _stream(store) == list(range(1, 1235)) and session.sealed and session.manifest.app == "toy"
    assert all(session.blob(s.blobs["input"]) == f"a:{s.seq}".encode() for s in session.spans)


# --- the Shipper over the in-memory transport -------------------------------------------------------------


def test_the_shipper_drains_the_spool_exactly_once(spool, hub, store):
    _record(spool, 700)

    async def main() -> None:
        shipper = await _ship(spool, MemoryTransport(hub), batch=100)
        assert shipper.sent_batches == 7 and shipper.reconnects == 0 and not shipper.connected

    asyncio.run(main())
    assert _stream(store) == list(range(1, 701)) and hub.stats.duplicates == 0


def test_a_partition_is_waited_out_and_nothing_is_sent_twice(spool, hub, store):
    async def main() -> None:
        transport = MemoryTransport(hub)
        shipper = Shipper(spool, transport, token=TOKEN, node="a", session="s1", batch=50, backoff=(0.001, 0.01))
        shipper.start()
        _record(spool, 120)
        shipper.poke()
        while spool.acked < 120:
            await asyncio.sleep(0.001)
        transport.up = False  # the 4G mesh drops out
        _record(spool, 200)
        shipper.poke()
        await asyncio.sleep(0.05)
        assert spool.acked == 120 and not shipper.connected
        transport.up = True
        assert await shipper.flush(10)
        await shipper.stop()
        assert shipper.reconnects > 0 and transport.connects > 1

    asyncio.run(main())
    assert _stream(store) == list(range(1, 321)) and hub.stats.duplicates == 0


class _LosingAcks(Transport):
    """Delivers every batch to the hub but loses the first `n` acks on the way back."""

    def __init__(self, inner: Transport, n: int) -> None:
        self.inner, self.n = inner, n

    async def connect(self) -> HubLink:
        return _LosingLink(self, await self.inner.connect())


class _LosingLink(HubLink):
    def __init__(self, owner: _LosingAcks, inner: HubLink) -> None:
        self.owner, self.inner = owner, inner

    async def send(self, msg: HubMessage) -> None:
        await self.inner.send(msg)

    async def receive(self) -> HubMessage:
        reply = await self.inner.receive()
        if isinstance(reply, Ack) and self.owner.n > 0:
            self.owner.n -= 1
            self.inner.close()
            raise ConnectionResetError("ack lost")
        return reply

    def close(self) -> None:
        self.inner.close()


def test_lost_acks_make_the_agent_resend_and_the_hub_drop_the_copies(spool, hub, store):
    _record(spool, 300)
    asyncio.run(_ship(spool, _LosingAcks(MemoryTransport(hub), 3), batch=100))
    assert _stream(store) == list(range(1, 301)) and hub.stats.duplicates == 0  # the welcome said where to go on
    assert spool.acked == 300


def test_a_restarted_agent_resumes_from_its_spool_and_the_welcome(tmp_path, hub, store):
    path = tmp_path / "a.spool"
    spool = Spool(path)
    _record(spool, 250)
    asyncio.run(_ship(spool, MemoryTransport(hub)))
    spool.close()  # the agent stops (or is killed: the spool is append-only)
    spool = Spool(path)
    assert spool.acked == 250
    _record(spool, 50)
    assert asyncio.run(_ship(spool, MemoryTransport(hub))).sent_batches == 1  # 251..300 only
    spool.close()
    stale = Spool(path)
    stale.acked = 0  # an agent that lost its ack frames: the hub's welcome puts it right
    assert asyncio.run(_ship(stale, MemoryTransport(hub))).sent_batches == 0
    assert stale.acked == 300
    stale.close()
    assert _stream(store) == list(range(1, 301)) and hub.stats.duplicates == 0


def test_the_hub_killed_and_restarted_under_the_shipper_loses_nothing_acknowledged(spool):
    torn = encode_frame(FrameType.RECORDS, b"\x90" * 100)[:-10]  # what a hub killed mid-write leaves

    async def main() -> MemorySessionStore:
        store = MemorySessionStore()
        transport = MemoryTransport(HubProtocol(store, token=TOKEN))
        shipper = Shipper(spool, transport, token=TOKEN, node="a", session="s1", batch=40, backoff=(0.001, 0.01))
        shipper.start()
        for _ in range(5):
            _record(spool, 90)
            shipper.poke()
            await asyncio.sleep(0.005)
            transport.up = False  # kill -9: every connection dies with the hub
            # (a hub that never reopened the session since the last kill left that tail as it was)
            store = MemorySessionStore({sid: data.removesuffix(torn) + torn for sid, data in store.snapshot().items()})
            transport.hub = HubProtocol(store, token=TOKEN)
            transport.up = True
        assert await shipper.flush(10)
        await shipper.stop()
        assert shipper.reconnects >= 1
        return store

    assert _stream(asyncio.run(main())) == list(range(1, 451))


def test_a_wrong_token_makes_the_shipper_give_up(spool, hub):
    _record(spool, 3)

    async def main() -> None:
        shipper = Shipper(spool, MemoryTransport(hub), token="wrong", node="a", session="s1")
        shipper.start()
        assert not await shipper.flush(5)
        await shipper.stop()
        assert shipper.refused == "missing or wrong token"

    asyncio.run(main())
    assert hub.stats.refused == 1 and spool.acked == 0


def test_seal_over_its_own_connection(spool, hub, store):
    _record(spool, 5)

    async def main() -> None:
        shipper = await _ship(spool, MemoryTransport(hub))
        await shipper.seal()

    asyncio.run(main())
    assert store.read("s1").sealed and _stream(store) == [1, 2, 3, 4, 5]


def test_a_batch_over_the_frame_limit_is_dropped_by_the_hub_like_over_tcp(spool, store):
    hub = HubProtocol(store, token=TOKEN, max_frame=4096)
    _record(spool, 1)
    spool.put_blob(b"x" * 10_000)

    async def main() -> None:
        link = await MemoryTransport(hub).connect()
        cursor = _cursor(spool)
        await link.send(cursor.hello())
        cursor.receive(await link.receive())
        big = Records(spans=b"\x90", blobs=[("0" * 64, b"x" * 10_000)])
        await link.send(big)
        with pytest.raises(ConnectionError):
            await link.receive()
        with pytest.raises(ConnectionError):
            await link.send(big)

    asyncio.run(main())
    assert hub.stats.closed_bad == 1
