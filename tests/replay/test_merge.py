"""More than one hub: two hubs each receive half of a fleet; merging their sessions gives the
session one hub would have stored, and its replay is the single hub's replay."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from edgetrace import Manifest, Session, UsageError
from edgetrace._codec import encode, encode_spans
from edgetrace._compact import by_reference
from edgetrace._hub_protocol import HubProtocol
from edgetrace._merge import merge_sessions
from edgetrace._store import FileSessionStore
from edgetrace._wire import Hello, Records, Seal, Welcome
from edgetrace.cli import main
from edgetrace.replay import replay_session

TOKEN = "t0ken"
RUN = "toy-run-7"


def _ship(recording: Session, hubs: dict[str, HubProtocol], route: dict[str, str], *, batch: int = 5) -> None:
    """Every node ships its stream, in batches, to its hub (nodes interleaved, as agents do),
    resending one batch on the way (the hub drops the duplicates)."""
    conns = {}
    for node in recording.nodes:
        conn = hubs[route[node]].connect(node)
        assert isinstance(conn.receive(Hello(token=TOKEN, node=node, session=RUN, manifest=recording.manifest)),
                          Welcome)
        conns[node] = conn
    streams = {n: sorted((s for s in recording.spans if s.node == n), key=lambda s: s.seq) for n in recording.nodes}
    batches = {n: [spans[i:i + batch] for i in range(0, len(spans), batch)] for n, spans in streams.items()}
    for round_ in itertools.zip_longest(*(batches[n] for n in sorted(batches))):
        for spans in round_:
            if not spans:
                continue
            blobs = sorted({sha for s in spans for sha in s.blobs.values()})
            msg = Records(spans=encode_spans(spans), blobs=[(sha, recording.blob(sha)) for sha in blobs])
            conns[spans[0].node].receive(msg)
            if spans[0].seq == 1:
                conns[spans[0].node].receive(msg)  # a resend after a lost ack
    for conn in conns.values():
        conn.receive(Seal(session=RUN))


@pytest.fixture(scope="module")
def hubs(tmp_path_factory):
    import toyapp

    root = tmp_path_factory.mktemp("hubs")
    recording = Session(toyapp.record(root / "run.ets", count=24))
    nodes = recording.nodes
    stores = {name: FileSessionStore(root / name) for name in ("a", "b", "single")}
    protocols = {name: HubProtocol(store, token=TOKEN) for name, store in stores.items()}
    half = {node: ("a" if i % 2 else "b") for i, node in enumerate(nodes)}
    _ship(recording, protocols, half)
    _ship(recording, protocols, dict.fromkeys(nodes, "single"))
    for store in stores.values():
        store.close()
    return {name: store.path(RUN) for name, store in stores.items()} | {"root": root, "half": half}


def _records(path: Path) -> dict[tuple[str, int], bytes]:
    return {(s.node, s.seq): encode(s) for s in Session(path).spans}


def test_each_hub_holds_half_and_the_merge_holds_the_run(hubs):
    a, b, single = Session(hubs["a"]), Session(hubs["b"]), Session(hubs["single"])
    assert {s.node for s in a.spans}.isdisjoint({s.node for s in b.spans})
    assert a.spans and b.spans
    out = hubs["root"] / "merged.ets"
    result = merge_sessions([hubs["a"], hubs["b"]], out)
    merged = Session(out)
    assert _records(out) == _records(hubs["single"])  # every record, byte for byte, vector clocks included
    assert sorted(merged.blob_ids()) == sorted(single.blob_ids())
    for sha in single.blob_ids():
        assert merged.blob(sha) == single.blob(sha)
    assert merged.manifest == single.manifest and merged.sealed
    assert result.records == len(single.spans) and result.nodes == single.nodes
    for node in merged.nodes:  # each node's stream in seq order
        seqs = [s.seq for s in merged.spans if s.node == node]
        assert seqs == sorted(seqs)
    # happens-before answers are the single hub's
    spans = single.spans
    for x, y in itertools.islice(itertools.product(spans[::7], spans[::11]), 400):
        assert merged.index.happens_before(x.ref, y.ref) == single.index.happens_before(x.ref, y.ref)


@pytest.mark.parametrize("faults", [[], ["drop(op=state.*, p=0.05)", "jitter(amount=2ms, p=0.5)"]])
def test_the_merged_session_replays_as_the_single_hubs(hubs, faults):
    import toyapp

    out = hubs["root"] / f"merged-{len(faults)}.ets"
    merge_sessions([hubs["b"], hubs["a"]], out)  # the order of the parts does not matter
    for seed in (0, 1, 2):
        got, _, _ = replay_session(out, faults=faults, seed=seed, app=toyapp.app)
        want, _, _ = replay_session(hubs["single"], faults=faults, seed=seed, app=toyapp.app)
        got_d, want_d = got.to_dict(), want.to_dict()
        assert got_d.pop("session") != want_d.pop("session")
        assert json.dumps(got_d, sort_keys=True) == json.dumps(want_d, sort_keys=True)


def test_parts_of_different_runs_are_refused(hubs, tmp_path):
    import msgspec

    from edgetrace import SessionWriter

    single = Session(hubs["single"])
    changed = [msgspec.structs.replace(s, end=s.end + 1) if s.seq == 4 else s for s in single.spans]
    with SessionWriter(tmp_path / "other.ets", single.manifest) as w:
        w.append(changed)
        w.seal()
    with pytest.raises(UsageError, match=r"record .*:4 differs from the record"):
        merge_sessions([hubs["single"], tmp_path / "other.ets"], tmp_path / "x.ets")
    with SessionWriter(tmp_path / "id.ets", Manifest(app_ref="another:app")) as w:
        w.seal()
    with pytest.raises(UsageError, match=r"not part of the same run: its app_ref is .another:app."):
        merge_sessions([hubs["a"], tmp_path / "id.ets"], tmp_path / "y.ets")
    assert not (tmp_path / "x.ets").exists() and not (tmp_path / "y.ets").exists()


def test_a_missing_part_is_a_gap_named_by_node(hubs, tmp_path):
    from edgetrace import SessionWriter

    single = Session(hubs["single"])
    node = single.nodes[1]
    kept = [s for s in single.spans if not (s.node == node and s.seq == 3)]
    with SessionWriter(tmp_path / "gappy.ets", single.manifest) as w:
        w.append(kept)
        w.seal()
    other = hubs["b" if hubs["half"][node] == "a" else "a"]  # the hub that never saw that node
    with pytest.raises(UsageError, match=f"node {node!r}: records 3 are in none"):
        merge_sessions([tmp_path / "gappy.ets", other], tmp_path / "z.ets")
    result = merge_sessions([tmp_path / "gappy.ets", other], tmp_path / "z.ets", allow_gaps=True)
    assert result.records == len(single.spans) - 1


def test_cli_merge(hubs, tmp_path, capsys):
    out = tmp_path / "S.ets"
    assert main(["merge", str(hubs["a"]), str(hubs["b"]), "--out", str(out)]) == 0
    assert "merged" in capsys.readouterr().out and _records(out) == _records(hubs["single"])
    assert main(["merge", str(hubs["a"]), "--out", str(tmp_path / "T.ets")]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["merge", str(hubs["a"]), str(hubs["b"]), "--out", str(tmp_path / "J.ets"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == len(Session(hubs["single"]).spans)



def test_parts_with_clocks_by_reference_merge_into_a_format_3_session(hubs, tmp_path):
    import msgspec

    from edgetrace import SessionWriter, UnsupportedFormatError
    from edgetrace._frames import FILE_HEADER_SIZE, read_file_header
    from edgetrace._records import CLOCK_REF_VERSION, FORMAT_VERSION
    from edgetrace._session import SESSION_MAGIC

    def version(path: Path) -> int:
        return read_file_header(path.read_bytes()[:FILE_HEADER_SIZE], magic=SESSION_MAGIC,
                                supported=CLOCK_REF_VERSION, path=path, what="session")

    single = Session(hubs["single"])
    # a node of part a (the part with references) whose clock runs 10 s behind: its receives
    # start before their sends
    skewed = next(n for n in single.nodes if hubs["half"][n] == "a")
    plain = [msgspec.structs.replace(s, start=s.start - 10**10, end=s.end - 10**10) if s.node == skewed else s
             for s in single.spans]
    refs = by_reference(plain)
    assert sum(bool(s.merged) for s in refs) > 10
    assert any(s.merged.rpartition(":")[0] != s.node and s.node == skewed for s in refs)
    parts = []
    for name, form, fmt in (("a", refs, CLOCK_REF_VERSION), ("b", plain, FORMAT_VERSION)):
        path = tmp_path / f"{name}.ets"
        with SessionWriter(path, single.manifest, format_version=fmt) as w:
            w.append([s for s in form if hubs["half"][s.node] == name])
            w.seal()
        parts.append(path)
    out = tmp_path / "merged.ets"
    merge_sessions(parts, out)
    assert version(out) == CLOCK_REF_VERSION
    merged = Session(out)
    assert sum(bool(s.merged) for s in merged.spans) == sum(bool(s.merged) for s in refs if hubs["half"][s.node] == "a")
    for span in single.spans:
        assert merged.index.clock(span.ref) == single.index.clock(span.ref), span.ref
    position = {s.ref: i for i, s in enumerate(merged.spans)}  # every reference points back in the file
    assert all(position[s.merged] < position[s.ref] for s in merged.spans if s.merged)
    for node in merged.nodes:
        seqs = [s.seq for s in merged.spans if s.node == node]
        assert seqs == sorted(seqs)
    # parts without references still merge into format 2
    assert version(merge_sessions([hubs["a"], hubs["b"]], tmp_path / "plain.ets").out) == FORMAT_VERSION
    # a live writer does not append to a session of format 3: one line saying why
    with pytest.raises(UnsupportedFormatError, match="clocks by reference") as caught:
        SessionWriter(out)
    assert "\n" not in str(caught.value)
    with SessionWriter(out, format_version=CLOCK_REF_VERSION) as w:  # a writer of format 3 continues it
        assert w.records == len(single.spans)
    with pytest.raises(ValueError, match="format_version"):
        SessionWriter(tmp_path / "x.ets", format_version=1)
