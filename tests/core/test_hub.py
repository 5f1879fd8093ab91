"""The hub over real loopback TCP: exactly-once storage, authentication, hostile input."""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrace import FrameError, Session, SpanKind
from edgetrace._hub import Hub
from edgetrace._wire import Hello, Records, decode_hub, encode_hub, read_frame
from edgetrace.agents import Recorder
from edgetrace.agents._shipper import Shipper
from edgetrace.agents._spool import Spool

TOKEN = "s3cret"


def _record(spool: Spool, node: str, n: int) -> None:
    rec = Recorder(node, spool)
    rec.resume(spool.last_seq, spool.clock)
    for i in range(n):
        rec.record(SpanKind.LOG, "step", trace=f"{node}-{i}", blobs={"input": rec.blob(b"x" * (i % 5))})


async def _ship(hub: Hub, spools: dict[str, Spool], session: str = "s1") -> None:
    shippers = [Shipper(sp, ("127.0.0.1", hub.port), token=TOKEN, node=node, session=session)
                for node, sp in spools.items()]
    for s in shippers:
        s.start()
    for s in shippers:
        assert await s.flush(10)
        await s.stop()


def test_many_agents_ship_exactly_once(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN)
        await hub.start()
        spools = {f"n{i}": Spool(tmp_path / f"n{i}.spool") for i in range(4)}
        for node, sp in spools.items():
            _record(sp, node, 700)
        await _ship(hub, spools)
        # a restarted agent that lost its ack cursor resends everything: the hub drops it all
        for node, sp in spools.items():
            sp.close()
            stale = Spool(tmp_path / f"{node}.spool")
            stale.acked = 0
            spools[node] = stale
        await _ship(hub, spools)
        assert hub.stats.records == 2800
        hub.close()
        for sp in spools.values():
            sp.close()

    asyncio.run(main())
    session = Session(tmp_path / "data" / "s1.ets")
    for i in range(4):
        assert [s.seq for s in session.spans if s.node == f"n{i}"] == list(range(1, 701))


def test_wrong_or_missing_token_is_refused(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN)
        await hub.start()
        for token in ("", "nope", TOKEN + "x"):
            reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
            writer.write(encode_hub(Hello(token=token, node="n", session="s1")))
            await writer.drain()
            answer = decode_hub(await read_frame(reader))
            assert type(answer).__name__ == "Refused"
            writer.close()
        assert hub.stats.refused == 3
        hub.close()

    asyncio.run(main())


def test_garbage_and_oversized_frames_close_only_that_connection(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN, max_frame=1024)
        await hub.start()
        for junk in (b"\xff\xff\xff\xffAAAA", struct.pack(">I", 5) + b"\x93\x01\x02\x03\x04", b"GET / HTTP/1.1\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
            writer.write(junk)
            await writer.drain()
            assert await reader.read() == b""  # closed on us
            writer.close()
        # the hub still serves a proper agent
        spool = Spool(tmp_path / "ok.spool")
        _record(spool, "ok", 5)
        await _ship(hub, {"ok": spool})
        assert hub.stats.records == 5 and hub.stats.closed_bad == 3
        hub.close()
        spool.close()

    asyncio.run(main())


def test_a_span_from_another_node_is_refused(tmp_path):
    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN)
        await hub.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
        writer.write(encode_hub(Hello(token=TOKEN, node="a", session="s1")))
        await writer.drain()
        await read_frame(reader)
        from edgetrace import Span
        from edgetrace._codec import encode_spans

        writer.write(encode_hub(Records(spans=encode_spans([Span(node="b", seq=1, kind=SpanKind.LOG, name="x")]))))
        await writer.drain()
        assert await reader.read() == b""
        writer.close()
        assert hub.stats.records == 0
        hub.close()

    asyncio.run(main())


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_decoding_random_bytes_only_raises_frame_error(data):
    try:
        decode_hub(data)
    except FrameError:
        pass


@settings(max_examples=50)
@given(st.binary(max_size=64))
def test_read_frame_on_random_streams(data):
    async def main() -> None:
        reader = asyncio.StreamReader(limit=2**16)
        reader.feed_data(data)
        reader.feed_eof()
        try:
            while await read_frame(reader, max_size=32) is not None:
                pass
        except FrameError:
            pass

    asyncio.run(main())


def test_compressed_batches_are_stored_as_sent_and_bombs_are_refused(tmp_path):
    import zlib

    from edgetrace import Span
    from edgetrace._codec import encode_spans
    from edgetrace._frames import FILE_HEADER_SIZE, FLAG_ZLIB, scan_frames

    spans = [Span(node="a", seq=i, kind=SpanKind.LOG, name="x", attrs={"i": i}) for i in range(1, 201)]
    packed = zlib.compress(encode_spans(spans), 1)

    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN, max_frame=64 * 1024)
        await hub.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
        writer.write(encode_hub(Hello(token=TOKEN, node="a", session="s1")))
        await writer.drain()
        await read_frame(reader)
        writer.write(encode_hub(Records(spans=packed, zlib=True)))
        await writer.drain()
        ack = decode_hub(await read_frame(reader))
        assert ack.seq == 200
        # a small frame that inflates past the frame limit closes the connection, stores nothing
        bomb = zlib.compress(b"\x00" * (10 * 1024 * 1024), 9)
        assert len(bomb) < 64 * 1024
        writer.write(encode_hub(Records(spans=bomb, zlib=True)))
        await writer.drain()
        assert await reader.read() == b""
        writer.close()
        assert hub.stats.records == 200 and hub.stats.closed_bad == 1
        hub.close()

    asyncio.run(main())
    path = tmp_path / "data" / "s1.ets"
    assert Session(path).spans == spans
    with open(path, "rb") as fh:
        frames = [f for f in scan_frames(fh, FILE_HEADER_SIZE, path=path) if hasattr(f, "type")]
    records = [f for f in frames if f.type.name == "RECORDS"]
    assert len(records) == 1 and records[0].flags == FLAG_ZLIB and records[0].payload == packed


def test_agents_ship_over_tls(tmp_path):
    import shutil
    import ssl
    import subprocess

    import pytest

    from edgetrace._transport import TcpTransport

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a throwaway certificate")
    cert, key = tmp_path / "hub.pem", tmp_path / "hub.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=hub",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        hub = Hub(tmp_path / "data", port=0, token=TOKEN, ssl=server)
        await hub.start()
        spool = Spool(tmp_path / "a.spool")
        _record(spool, "a", 50)
        shipper = Shipper(spool, TcpTransport("127.0.0.1", hub.port, ssl=client), token=TOKEN, node="a", session="s1")
        shipper.start()
        assert await shipper.flush(10)
        await shipper.stop()
        # an agent speaking plain TCP to a TLS hub gets nowhere, and stores nothing
        other = Spool(tmp_path / "b.spool")
        _record(other, "b", 5)
        plain = Shipper(other, TcpTransport("127.0.0.1", hub.port, timeout=1), token=TOKEN, node="b", session="s2")
        plain.start()
        assert not await plain.flush(0.5)
        await plain.stop()
        hub.close()
        spool.close()
        other.close()

    asyncio.run(main())
    assert [s.seq for s in Session(tmp_path / "data" / "s1.ets").spans] == list(range(1, 51))
    assert not (tmp_path / "data" / "s2.ets").exists()
