"""The hub's protocol without sockets: messages in, replies out, sessions in a store."""

from __future__ import annotations

import logging
import zlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetrace import FrameError, Manifest, Span, SpanKind
from edgetrace._codec import encode_spans
from edgetrace._frames import FILE_HEADER_SIZE, FLAG_ZLIB, FrameType, encode_frame, scan_frames
from edgetrace._hub_protocol import HubConnection, HubProtocol
from edgetrace._records import blob_id
from edgetrace._store import FileSessionStore, MemorySessionStore, SessionStore
from edgetrace._wire import Ack, Hello, Records, Refused, Seal, Welcome, encode_hub

TOKEN = "s3cret"


def _spans(node: str, seqs: range | list[int]) -> list[Span]:
    return [Span(node=node, seq=s, kind=SpanKind.LOG, name="step", trace=f"t{s}", attrs={"i": s}) for s in seqs]


def _records(node: str, seqs: range | list[int], *, packed: bool = True) -> Records:
    payload = encode_spans(_spans(node, seqs))
    return Records(spans=zlib.compress(payload, 1), zlib=True) if packed else Records(spans=payload)


def _hello(hub: HubProtocol, node: str = "a", session: str = "s1", **kw: object) -> HubConnection:
    conn = hub.connect()
    reply = conn.receive(Hello(token=TOKEN, node=node, session=session, **kw))  # type: ignore[arg-type]
    assert isinstance(reply, Welcome)
    return conn


def _seqs(store: SessionStore, node: str = "a", session: str = "s1") -> list[int]:
    return [s.seq for s in store.read(session).spans if s.node == node]


def _frames(data: bytes) -> list[object]:
    return [f for f in scan_frames(data, FILE_HEADER_SIZE, path="mem") if hasattr(f, "type")]


@pytest.fixture
def store() -> MemorySessionStore:
    return MemorySessionStore()


@pytest.fixture
def hub(store: MemorySessionStore) -> HubProtocol:
    return HubProtocol(store, token=TOKEN)


# --- hello, auth ----------------------------------------------------------------------------------


def test_hello_is_welcomed_with_the_last_stored_seq(hub, store):
    conn = hub.connect()
    assert conn.receive(Hello(token=TOKEN, node="a", session="s1")) == Welcome(last_seq=0)
    assert conn.receive(_records("a", range(1, 4))) == Ack(node="a", seq=3)
    again = hub.connect()
    assert again.receive(Hello(token=TOKEN, node="a", session="s1")) == Welcome(last_seq=3, high=3)
    assert hub.connect().receive(Hello(token=TOKEN, node="b", session="s1")) == Welcome(last_seq=0)
    assert store.sessions() == ["s1"] and hub.stats.sessions == {"s1"} and hub.stats.connections == 3


@pytest.mark.parametrize("token", ["", "nope", TOKEN + "x"])
def test_a_wrong_or_missing_token_is_refused_and_ends_the_conversation(hub, store, token):
    conn = hub.connect()
    reply = conn.receive(Hello(token=token, node="a", session="s1"))
    assert isinstance(reply, Refused) and "token" in reply.reason
    assert conn.closed and hub.stats.refused == 1
    with pytest.raises(FrameError, match="ended"):
        conn.receive(_records("a", [1]))
    assert store.sessions() == []  # a refused agent creates nothing


def test_a_hub_without_a_token_takes_agents_without_one(store):
    hub = HubProtocol(store)
    assert hub.connect().receive(Hello(token="", node="a", session="s1")) == Welcome(last_seq=0)
    assert isinstance(hub.connect().receive(Hello(token="x", node="a", session="s1")), Refused)


@pytest.mark.parametrize("first", [_records("a", [1]), Seal(session="s1"), Welcome(last_seq=0)])
def test_anything_but_hello_first_is_a_frame_error(hub, first):
    with pytest.raises(FrameError, match="expected hello first"):
        hub.connect().receive(first)


@pytest.mark.parametrize(("node", "session"), [("", "s1"), ("a", "../etc/passwd"), ("a", ""), ("a", "x" * 300)])
def test_bad_session_ids_and_empty_nodes_are_refused(hub, store, node, session):
    with pytest.raises(FrameError, match="bad session id"):
        hub.connect().receive(Hello(token=TOKEN, node=node, session=session))
    assert store.sessions() == []


def test_hub_messages_from_an_agent_after_hello_are_frame_errors(hub):
    conn = _hello(hub)
    with pytest.raises(FrameError, match="unexpected Hello after hello"):
        conn.receive(Hello(token=TOKEN, node="a", session="s1"))


# --- exactly once: duplicates, gaps --------------------------------------------------------------


def test_resent_records_are_dropped_and_overlaps_store_only_the_new_part(hub, store):
    conn = _hello(hub)
    assert conn.receive(_records("a", range(1, 11))).seq == 10
    assert conn.receive(_records("a", range(1, 11))).seq == 10  # an ack the agent never saw
    assert conn.receive(_records("a", range(5, 16), packed=False)).seq == 15
    assert _seqs(store) == list(range(1, 16))
    assert (hub.stats.records, hub.stats.duplicates) == (15, 16)


def test_a_gap_is_acked_up_to_what_is_stored_and_nothing_out_of_order_is_kept(hub, store):
    conn = _hello(hub)
    conn.receive(_records("a", range(1, 6)))
    assert conn.receive(_records("a", range(8, 11))) == Ack(node="a", seq=5)
    assert conn.receive(_records("a", [6, 7, 9, 10])) == Ack(node="a", seq=7)  # cut at the gap
    assert conn.receive(_records("a", range(8, 11))).seq == 10
    assert _seqs(store) == list(range(1, 11)) and hub.stats.gaps == 2


def test_two_connections_of_one_node_still_store_each_record_once(hub, store):
    old, new = _hello(hub), _hello(hub)  # a restarted agent while its old connection lingers
    old.receive(_records("a", range(1, 6)))
    assert new.receive(_records("a", range(1, 9))).seq == 8
    assert old.receive(_records("a", range(6, 10))).seq == 9
    assert _seqs(store) == list(range(1, 10))


def test_a_span_of_another_node_is_refused_and_nothing_is_stored(hub, store):
    conn = _hello(hub)
    with pytest.raises(FrameError, match="sent a span of 'b'"):
        conn.receive(_records("b", [1]))
    mixed = Records(spans=encode_spans(_spans("a", [1]) + _spans("b", [1])))
    with pytest.raises(FrameError, match="sent a span of 'b'"):
        conn.receive(mixed)
    assert _seqs(store) == [] and hub.stats.records == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 12), st.booleans()), max_size=25), st.data())
def test_any_mix_of_resends_gaps_and_hub_restarts_keeps_every_ack_stored_exactly_once(batches, data):
    store = MemorySessionStore()
    hub = HubProtocol(store, token=TOKEN)
    conn = _hello(hub)
    acked = 0
    for lo, n, restart in batches:
        if restart:  # the hub dies and comes back on what it had stored
            store = MemorySessionStore(store.snapshot())
            hub = HubProtocol(store, token=TOKEN)
            welcome = hub.connect().receive(Hello(token=TOKEN, node="a", session="s1"))
            assert welcome == Welcome(last_seq=acked, high=acked)
            conn = _hello(hub)
        seqs = list(range(lo, lo + n))
        if data.draw(st.booleans()):
            seqs = data.draw(st.permutations(seqs))
        ack = conn.receive(_records("a", seqs, packed=data.draw(st.booleans())))
        assert isinstance(ack, Ack) and ack.seq >= acked
        acked = ack.seq
        assert _seqs(store) == list(range(1, acked + 1))


# --- validation ------------------------------------------------------------------------------------


def test_blobs_must_match_their_names(hub, store):
    conn = _hello(hub)
    good, bad = b"camera frame", b"tampered"
    with pytest.raises(FrameError, match="does not match its content"):
        conn.receive(Records(spans=encode_spans(_spans("a", [1])), blobs=[(blob_id(good), bad)]))
    assert _seqs(store) == [] and list(store.read("s1").blob_ids()) == []
    conn = _hello(hub)
    assert conn.receive(Records(spans=encode_spans(_spans("a", [1])), blobs=[(blob_id(good), good)])).seq == 1
    assert store.read("s1").blob(blob_id(good)) == good


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\xc1", "do not decode"),
        (msgspec.msgpack.encode({"not": "a list"}), "do not decode"),
        (msgspec.msgpack.encode([["a", "one", "log", "x"]]), "does not say which it is"),
        (msgspec.msgpack.encode([[7, 1, "log", "x"]]), "does not say which it is"),
    ],
)
def test_records_that_are_not_records_drop_the_connection(hub, store, payload, match):
    with pytest.raises(FrameError, match=match):
        _hello(hub).receive(Records(spans=payload))
    assert _seqs(store) == []


def test_compressed_batches_are_stored_as_sent_and_bombs_are_refused(store):
    hub = HubProtocol(store, token=TOKEN, max_frame=64 * 1024)
    conn = _hello(hub)
    packed = _records("a", range(1, 201))
    assert conn.receive(packed).seq == 200
    for junk in (zlib.compress(b"\x00" * (10 * 1024 * 1024), 9), b"not zlib", zlib.compress(b"[]")[:-3]):
        with pytest.raises(FrameError, match=r"decompress|inflate"):
            conn.receive(Records(spans=junk, zlib=True))
    (records,) = [f for f in _frames(store.snapshot()["s1"]) if f.type is FrameType.RECORDS]
    assert records.flags == FLAG_ZLIB and records.payload == packed.spans
    assert store.read("s1").spans == _spans("a", range(1, 201))


def test_receive_frame_decodes_and_encodes_and_garbage_is_a_frame_error(hub):
    conn = hub.connect()
    reply = conn.receive_frame(encode_hub(Hello(token=TOKEN, node="a", session="s1"))[4:])
    assert reply == encode_hub(Welcome(last_seq=0))
    with pytest.raises(FrameError, match="malformed"):
        conn.receive_frame(b"\x93\x01\x02\x03")
    conn.abort(FrameError("test"))
    assert conn.closed and hub.stats.closed_bad == 1


# --- manifest, seal, hooks, local records ------------------------------------------------------------


def test_manifests_from_hellos_are_merged_and_repeats_write_nothing(hub, store):
    _hello(hub, "a", manifest=Manifest(session_id="s1", app="agri", nodes=["a"], seed=3))
    _hello(hub, "b", manifest=Manifest(session_id="s1", app="agri", nodes=["b"]))
    _hello(hub, "a", manifest=Manifest(session_id="s1", app="agri", nodes=["a"], seed=3))  # a reconnect
    manifest = store.read("s1").manifest
    assert (manifest.app, sorted(manifest.nodes), manifest.seed) == ("agri", ["a", "b"], 3)
    assert hub.manifest("s1") == store.open("s1").manifest
    kinds = [f.type for f in _frames(store.snapshot()["s1"])]
    assert kinds.count(FrameType.MANIFEST) == 2


def test_manifest_of_an_unknown_or_closed_session_creates_nothing(hub, store):
    assert hub.manifest("nobody") == Manifest(session_id="nobody")
    assert store.sessions() == [] and store.get("nobody") is None
    _hello(hub, manifest=Manifest(session_id="s1", app="agri"))
    assert hub.manifest("s1").app == "agri"
    store.close()
    assert hub.manifest("s1") == Manifest(session_id="s1") and store.get("s1") is None


def test_seal_marks_the_session_complete_and_acks_the_node(hub, store):
    conn = _hello(hub)
    conn.receive(_records("a", range(1, 4)))
    assert not store.read("s1").sealed
    assert conn.receive(Seal(session="s1")) == Ack(node="a", seq=3)
    assert store.read("s1").sealed
    assert _hello(hub, "driver").receive(Seal(session="s1")) == Ack(node="driver", seq=0)  # twice: no-op
    assert [f.type for f in _frames(store.snapshot()["s1"])].count(FrameType.SEAL) == 1


def test_the_span_hook_sees_only_fresh_spans_and_its_failures_never_break_ingest(store, caplog):
    seen: list[tuple[str, list[int]]] = []
    hub = HubProtocol(store, token=TOKEN, on_spans=lambda session, spans: seen.append(
        (session, [s.seq for s in spans])))
    conn = _hello(hub)
    conn.receive(_records("a", range(1, 4)))
    conn.receive(_records("a", range(2, 6)))
    conn.receive(_records("a", range(2, 6)))  # all duplicates: nothing to forward
    assert seen == [("s1", [1, 2, 3]), ("s1", [4, 5])]

    def broken(session: str, spans: list[Span]) -> None:
        raise RuntimeError("collector down")

    hub.on_spans = broken
    with caplog.at_level(logging.WARNING, logger="edgetrace.hub"):
        assert conn.receive(_records("a", [6])).seq == 6
    assert "collector down" in caplog.text and _seqs(store) == list(range(1, 7))


def test_store_local_numbers_from_the_writer_and_survives_a_restart(store):
    hub = HubProtocol(store)

    def build(writer):
        first = writer.last_seq.get("otel:svc", 0) + 1
        return _spans("otel:svc", [first, first + 1])

    assert [s.seq for s in hub.store_local("s1", build)] == [1, 2]
    hub = HubProtocol(MemorySessionStore(store.snapshot()))
    assert [s.seq for s in hub.store_local("s1", build)] == [3, 4]
    assert hub.store_local("s1", lambda writer: []) == []
    with pytest.raises(FrameError, match="bad session id"):
        hub.store_local("../x", build)


# --- durability and restarts -------------------------------------------------------------------------


def test_records_are_fsynced_before_the_ack_exists(tmp_path, monkeypatch):
    import edgetrace._session as session_module

    synced: list[int] = []
    monkeypatch.setattr(session_module.os, "fsync", lambda fd: synced.append(fd))
    hub = HubProtocol(FileSessionStore(tmp_path, fsync="frame"), token=TOKEN)
    conn = _hello(hub)
    synced.clear()
    conn.receive(_records("a", range(1, 4)))
    assert synced  # before receive returned, so before any transport could send the ack
    hub.store.close()


def test_without_fsync_acked_records_are_at_least_handed_to_the_os(tmp_path):
    store = FileSessionStore(tmp_path, fsync="never")
    conn = _hello(HubProtocol(store, token=TOKEN))
    conn.receive(_records("a", range(1, 4)))
    from edgetrace import Session

    assert [s.seq for s in Session(tmp_path / "s1.ets").spans] == [1, 2, 3]  # no flush by the reader
    store.close()


def test_a_hub_killed_mid_write_resumes_from_the_file_and_cuts_the_torn_tail(tmp_path, caplog):
    crashed = FileSessionStore(tmp_path / "data")
    conn = _hello(HubProtocol(crashed, token=TOKEN))
    conn.receive(_records("a", range(1, 301)))
    conn.receive(_records("a", range(301, 401)))
    with open(tmp_path / "data" / "s1.ets", "ab") as fh:  # killed while writing the next batch
        fh.write(encode_frame(FrameType.RECORDS, encode_spans(_spans("a", range(401, 501))))[:-7])
    with caplog.at_level(logging.WARNING, logger="edgetrace.hub"):
        restarted = FileSessionStore(tmp_path / "data")
        hub = HubProtocol(restarted, token=TOKEN)
        conn = hub.connect()
        assert conn.receive(Hello(token=TOKEN, node="a", session="s1")) == Welcome(last_seq=400, high=400)
    assert "torn tail" in caplog.text
    assert conn.receive(_records("a", range(350, 501))).seq == 500
    assert _seqs(restarted) == list(range(1, 501))
    assert restarted.sessions() == ["s1"]
    crashed.close()
    restarted.close()


def test_a_memory_store_restarted_from_a_cut_snapshot_recovers_like_a_file(store, hub, caplog):
    conn = _hello(hub)
    conn.receive(_records("a", range(1, 51)))
    conn.receive(_records("a", range(51, 61)))
    data = store.snapshot()["s1"]
    last = _frames(data)[-1]
    with caplog.at_level(logging.WARNING, logger="edgetrace.hub"):
        again = MemorySessionStore({"s1": data[: last.offset + 5]})
        assert _hello(HubProtocol(again, token=TOKEN)).receive(_records("a", [])) == Ack(node="a", seq=50)
    assert "torn tail" in caplog.text and _seqs(again) == list(range(1, 51))


def test_a_memory_store_is_readable_while_it_is_written_and_exports_real_session_files(store, hub, tmp_path):
    conn = _hello(hub)
    conn.receive(_records("a", range(1, 4)))
    follower = store.read("s1")
    conn.receive(_records("a", range(4, 6)))
    assert [s.seq for s in follower.refresh()] == [4, 5]
    path = tmp_path / "s1.ets"
    path.write_bytes(store.snapshot()["s1"])
    from edgetrace import Session

    assert [s.seq for s in Session(path).spans] == [1, 2, 3, 4, 5]
    store.close()  # closing keeps the bytes: they are the stored session
    assert _seqs(store) == [1, 2, 3, 4, 5]
    # a connection whose writer the store closed (shut down, or too many open sessions) takes the
    # session up again from its bytes
    assert conn.receive(_records("a", [6])).seq == 6
    assert _hello(hub).receive(_records("a", [7])).seq == 7


def test_a_memory_store_refuses_unknown_sessions_and_bad_ids(store):
    from edgetrace import SessionNotFoundError, UsageError

    with pytest.raises(SessionNotFoundError):
        store.read("nope")
    with pytest.raises(UsageError, match="bad session id"):
        store.open("a/b")
    store.open("ok")
    assert store.sessions() == ["ok"] and store.snapshot()["ok"].startswith(b"ETSESS\r\n")
