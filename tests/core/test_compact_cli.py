"""`edgetrace compact`: what `record` does to its session when the hub stops, for any sealed
session (a hub's, one saved by `replay --save`), atomically, and never to one still written."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from edgetrace import Manifest, Session, SessionWriter, Span, SpanKind
from edgetrace.cli import main


def history(n: int = 600, nodes: int = 5, seed: int = 3) -> list[Span]:
    """Messages between a few nodes with real delta clocks (a receive takes the send's)."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(nodes)]
    clock = {name: {} for name in names}
    seq = dict.fromkeys(names, 0)
    inbox: list[tuple[str, str, dict[str, int]]] = []
    spans = []
    for _ in range(n):
        node = rng.choice(names)
        seq[node] += 1
        before = dict(clock[node])
        cause, kind = "", SpanKind.INFER
        waiting = [m for m in inbox if m[0] == node]
        if waiting and rng.random() < 0.6:
            inbox.remove(waiting[0])
            _, cause, sent = waiting[0]
            kind = SpanKind.RECV
            for k, v in sent.items():
                if k != node and v > clock[node].get(k, 0):
                    clock[node][k] = v
        elif rng.random() < 0.4:
            kind = SpanKind.SEND
            full = dict(clock[node]) | {node: seq[node]}
            inbox.append((rng.choice([m for m in names if m != node]), f"{node}:{seq[node]}", full))
        delta = {k: v for k, v in clock[node].items() if before.get(k) != v}
        spans.append(Span(node=node, seq=seq[node], kind=kind, name=kind.value, trace=f"t{len(spans) // 4}",
                          cause=cause, start=len(spans) * 1000, end=len(spans) * 1000 + 500, vc=delta))
    return spans


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    path = tmp_path / "hub.ets"
    with SessionWriter(path, Manifest(app="x")) as w:
        spans = history()
        for a in range(0, len(spans), 50):  # as a hub writes: many small zlib frames
            w.append(spans[a:a + 50])
        w.seal()
    return path


def clocks(path: Path) -> dict[str, dict[str, int]]:
    session = Session(path)
    return {s.ref: dict(session.index.clock(s).items()) for s in session.spans}


def test_compacts_in_place_keeping_every_record_and_clock(sealed, capsys):
    expected = clocks(sealed)
    before = sealed.stat().st_size
    assert main(["compact", str(sealed)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"compacted {sealed}: ") and "by reference" in out
    assert sealed.stat().st_size < before
    assert clocks(sealed) == expected
    assert main(["compact", str(sealed)]) == 0  # again: a compacted session compacts as well
    assert clocks(sealed) == expected


def test_out_and_json(sealed, tmp_path, capsys):
    original = sealed.read_bytes()
    out = tmp_path / "small.ets"
    assert main(["compact", str(sealed), "--out", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert sealed.read_bytes() == original  # --out leaves the session as it was
    assert got["out"] == str(out) and got["bytes_after"] == out.stat().st_size < got["bytes_before"]
    assert got["format_version"] == 3 and got["clock_references"] is True
    assert clocks(out) == clocks(sealed)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    assert main(["compact", str(sealed), "--out", str(tmp_path / "v2.ets"), "--no-references", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format_version"] == 2


def test_refuses_a_session_still_being_written_and_leaves_it_alone(tmp_path, capsys):
    path = tmp_path / "live.ets"
    with SessionWriter(path, Manifest(app="x")) as w:  # not sealed: a hub may still append
        w.append(history(50))
    original = path.read_bytes()
    assert main(["compact", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only a sealed session can be compacted" in err
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["live.ets"]
    assert main(["compact", str(path), "--out", str(tmp_path / "o.ets")]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["live.ets"]


def test_bad_input_is_one_line_and_exit_2(sealed, tmp_path, capsys):
    assert main(["compact", str(tmp_path / "missing.ets")]) == 2
    assert "no such session" in capsys.readouterr().err
    damaged = tmp_path / "damaged.ets"
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert main(["compact", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert damaged.read_bytes() == bytes(data)
    assert main(["compact", str(sealed), "--out", str(tmp_path)]) == 2  # a folder, not a file
