"""One bad record never makes a session unreadable (issue 14, defects 2 and 11).

The hub validates every record with the decoder readers use; a record that does not
validate is refused — recorded as lost with the reason, listed in the ack — and the rest of
the batch is stored, so every reader still reads the session, and a restarted hub still
takes its agents. Readers refuse a damaged session with one line (exit 2, never 3) and can
salvage it: a damaged frame skipped with a loud warning and an exact count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import msgspec
import pytest

from edgetrace import CorruptSessionError, Manifest, Session, SessionWriter, Span, SpanKind
from edgetrace._codec import decode_spans, encode_spans
from edgetrace._frames import FILE_HEADER_SIZE, FrameType, ScanResult, scan_frames
from edgetrace._hub_protocol import HubProtocol
from edgetrace._store import MemorySessionStore
from edgetrace._wire import Ack, Hello, Records, Welcome

TOKEN = "t"
DATA = Path(__file__).resolve().parents[1] / "data"

_SPAN = ["a", 0, "log", "x", "trace", "", "", 0, 0, {}, {}, "ok", "", {}]


def _raw(seq: int, **fields: object) -> list[object]:
    """A span record as MessagePack would carry it: fields by position, anything in them."""
    names = ["node", "seq", "kind", "name", "trace", "parent", "cause", "start", "end", "vc", "attrs", "status",
             "error", "blobs"]
    row = list(_SPAN)
    row[1] = seq
    for key, value in fields.items():
        row[names.index(key)] = value
    return row


HOSTILE = {
    "int key": {"attrs": {1: "x"}},
    "binary key": {"attrs": {b"k": "x"}},
    "nested int key": {"attrs": {"a": [{"b": {2: 3}}]}},
    "ext type": {"attrs": {"a": msgspec.msgpack.Ext(5, b"\x01\x02")}},
    "binary value": {"attrs": {"a": b"\x00\xff"}},
    "negative clock entry": {"vc": {"b": -3}},
    "start 2^64-1": {"start": 2**64 - 1},
    "end -2^63": {"end": -(2**63)},
    "too deep": {"attrs": {"a": [[[[[[[[[[1]]]]]]]]]]}},
}
MALFORMED_TIMESTAMP = b"\xc7\x05\xff" + b"\x01" * 5  # ext -1 (a timestamp) of a length none has


def _batch(bad: dict[str, object] | None, seqs: range = range(1, 6), bad_at: int = 3) -> bytes:
    rows = [_raw(s, **(bad if bad is not None and s == bad_at else {})) for s in seqs]
    return msgspec.msgpack.encode(rows)


def _hub() -> tuple[HubProtocol, MemorySessionStore]:
    store = MemorySessionStore()
    return HubProtocol(store, token=TOKEN), store


def _send(hub: HubProtocol, payload: bytes, node: str = "a") -> Ack:
    conn = hub.connect()
    assert isinstance(conn.receive(Hello(token=TOKEN, node=node, session="s1")), Welcome)
    reply = conn.receive(Records(spans=zlib.compress(payload, 1), zlib=True))
    assert isinstance(reply, Ack)
    return reply


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_record_is_refused_with_a_reason_and_the_rest_is_stored(case):
    hub, store = _hub()
    ack = _send(hub, _batch(HOSTILE[case]))
    assert ack.seq == 5, "the agent may move on: nothing of its batch is owed any more"
    assert [seq for seq, _ in ack.rejected] == [3] and ack.rejected[0][1]
    session = store.read("s1")  # every reader reads it: the hub stored nothing readers refuse
    assert [s.seq for s in session.spans] == [1, 2, 4, 5]
    assert [(m.first, m.last, m.by) for m in session.lost] == [(3, 3, "hub")]
    assert hub.stats.rejected == 1 and hub.stats.records == 4
    # and a hub restarted on that session takes its agents as before
    again = HubProtocol(MemorySessionStore(store.snapshot()), token=TOKEN)
    assert _send(again, _batch(None, range(6, 9))).seq == 8


def test_a_malformed_timestamp_is_refused_too():
    hub, store = _hub()
    bad = msgspec.msgpack.encode(_raw(2, attrs={"t": "@@TS@@"})).replace(b"\xa6@@TS@@", MALFORMED_TIMESTAMP)
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode_spans(b"\x91" + bad)
    payload = b"\x93" + msgspec.msgpack.encode(_raw(1)) + bad + msgspec.msgpack.encode(_raw(3))
    ack = _send(hub, payload)
    assert ack.seq == 3 and [seq for seq, _ in ack.rejected] == [2]
    assert [s.seq for s in store.read("s1").spans] == [1, 3]


def _with_ref(seq: int, merged: str) -> list[object]:
    return [*_raw(seq, kind="recv", vc={"b": 1}), merged]  # `merged` is the field after `blobs`


@pytest.mark.parametrize("compressed", [True, False])
def test_a_clock_reference_from_an_agent_is_refused_never_stored(compressed):
    """Only compaction writes `Span.merged` (a version-3 session): an agent's is refused."""
    hub, store = _hub()
    rows = [_raw(1), _with_ref(2, "b:1"), _raw(3)]
    payload = msgspec.msgpack.encode(rows)
    assert [bool(s.merged) for s in decode_spans(payload)] == [False, True, False], "it decodes"
    conn = hub.connect()
    assert isinstance(conn.receive(Hello(token=TOKEN, node="a", session="s1")), Welcome)
    ack = conn.receive(Records(spans=zlib.compress(payload, 1) if compressed else payload, zlib=compressed))
    assert isinstance(ack, Ack)
    assert ack.seq == 3 and [seq for seq, _ in ack.rejected] == [2]
    assert "compaction" in ack.rejected[0][1]
    session = store.read("s1")
    assert [s.seq for s in session.spans] == [1, 3] and not any(s.merged for s in session.spans)
    assert [(m.first, m.last, m.by) for m in session.lost] == [(2, 2, "hub")]
    assert "compaction" in session.lost[0].reason
    assert hub.stats.rejected == 1 and hub.stats.records == 2


def test_what_the_hub_stores_is_exactly_what_readers_accept():
    """The hub's check and the readers' decoder are one: no record passes one and fails the other."""
    for case, bad in HOSTILE.items():
        with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
            decode_spans(_batch(bad, range(1, 2), bad_at=1))
        hub, store = _hub()
        _send(hub, _batch(bad, range(1, 2), bad_at=1))
        assert store.read("s1").spans == [], case


def test_a_refused_record_is_quarantined_by_the_agent_not_resent():
    import asyncio
    import tempfile

    from edgetrace._transport import MemoryTransport
    from edgetrace.agents import Recorder
    from edgetrace.agents._shipper import Shipper
    from edgetrace.agents._spool import Spool

    hub, store = _hub()

    async def main(folder: str) -> None:
        spool = Spool(Path(folder) / "a.spool")
        rec = Recorder("a", spool)
        for i in range(10):  # the recorder takes anything; the spool and the hub do not
            rec.record(SpanKind.LOG, "step", attrs={"i": i} if i != 4 else {"bad": [[[[[[[[[[b"deep"]]]]]]]]]]})
        spool.flush()
        transport = MemoryTransport(hub)
        shipper = Shipper(spool, transport, token=TOKEN, node="a", session="s1", backoff=(0.001, 0.01))
        shipper.start()
        assert await shipper.flush(10), "a record nobody can read must not hold the rest back"
        await shipper.stop()
        assert transport.connects == 1, "nothing is retried"
        assert spool.stats()["lost"] == 1
        spool.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(folder))
    session = store.read("s1")
    assert [s.seq for s in session.spans] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    (lost,) = session.lost
    assert (lost.first, lost.last, lost.by) == (5, 5, "agent") and "does not validate" in lost.reason


# --- readers: one line, exit 2, and --salvage -----------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetrace", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def _hostile_file(path: Path, bad: dict[str, object]) -> None:
    """A session with a hostile record written past the hub (as a hand-edited file would be)."""
    from edgetrace._frames import encode_frame

    with SessionWriter(path, Manifest(session_id="h", app="t")) as w:
        w.append([Span(node="a", seq=1, kind=SpanKind.LOG, name="x", trace="t1")])
    with open(path, "ab") as fh:
        fh.write(encode_frame(FrameType.RECORDS, _batch(bad, range(2, 3), bad_at=2)))


@pytest.mark.parametrize("case", ["negative clock entry", "ext type", "int key", "start 2^64-1"])
@pytest.mark.parametrize("verb", [["show"], ["show", "--json"], ["show", "--trace", "trace", "--json"],
                                  ["replay", "--json"], ["export", "--otlp", "http://127.0.0.1:9"]])
def test_hostile_values_in_a_file_are_exit_2_in_every_reader(tmp_path, case, verb):
    path = tmp_path / "h.ets"
    _hostile_file(path, HOSTILE[case])
    r = _cli(verb[0], str(path), *verb[1:], cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "internal error" not in r.stderr
    assert "--salvage" in r.stderr


def _damaged(tmp_path: Path) -> Path:
    """A hub-written session of 3 nodes whose middle frame (node b's batch) has one flipped byte."""
    hub, store = _hub()
    for node in ("a", "b", "c"):
        _send(hub, encode_spans([Span(node=node, seq=s, kind=SpanKind.LOG, name="x", trace=f"{node}{s}")
                                 for s in range(1, 58)]), node=node)
    data = bytearray(store.snapshot()["s1"])
    frames = [f for f in scan_frames(bytes(data), FILE_HEADER_SIZE, path="m") if not isinstance(f, ScanResult)]
    b_records = [f for f in frames if f.type is FrameType.RECORDS][1]
    data[b_records.offset + 40] ^= 0x01
    path = tmp_path / "damaged.ets"
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_frame_is_refused_with_the_way_out(tmp_path):
    path = _damaged(tmp_path)
    with pytest.raises(CorruptSessionError, match="payload CRC"):
        Session(path)
    r = _cli("show", str(path), cwd=tmp_path)
    assert r.returncode == 2 and "--salvage" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_salvage_skips_the_damaged_frame_loudly_and_counts_exactly(tmp_path):
    path = _damaged(tmp_path)
    session = Session(path, salvage=True)
    assert sorted({s.node for s in session.spans}) == ["a", "c"] and len(session.spans) == 114
    assert session.missing() == {"b": [(1, None)]}
    report = session.salvage_report()
    assert "skipped 1 damaged frame" in report and "57 records are missing" in report and "b seq 1–" in report
    for verb in (["show"], ["show", "--json"], ["replay", "--app", "tests/replay/toyapp.py:app", "--json"]):
        r = _cli(verb[0], str(path), "--salvage", *verb[1:], cwd=Path(__file__).resolve().parents[2])
        assert "57 records are missing" in r.stderr, (verb, r.stderr)
        assert r.returncode in (0, 1), (verb, r.stderr)
        if "--json" in verb and verb[0] == "show":
            assert json.loads(r.stdout)["spans"] == 114
    r = _cli("export", str(path), "--salvage", "--otlp", "http://127.0.0.1:9", "--timeout", "1", cwd=tmp_path)
    assert "57 records are missing" in r.stderr and "payload CRC" not in r.stderr.splitlines()[-1]


def test_the_format_1_test_session_still_reads_with_the_strict_decoder():
    session = Session(DATA / "agri-demo.ets")
    assert session.version == 1 and len(session.spans) > 100 and not session.damage
