"""`edgetrace replay S --from CUT` and `edgetrace show S --cuts` as a user types them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edgetrace._records import Span
from edgetrace._session import Session
from edgetrace.cli import main
from edgetrace.replay.testing import GridHarness

sys.path.insert(0, str(Path(__file__).parent))
import cutapp

APP = f"{Path(__file__).parent / 'cutapp.py'}:app"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    grid = GridHarness(cutapp.app, cutapp.NODES, profile=cutapp.PROFILE, seed=3, snapshot_every="10s")
    grid.inputs(cutapp.inputs(minutes=1))
    grid.run(until="80s").save(folder / "with.ets")
    plain = GridHarness(cutapp.app, cutapp.NODES, profile=cutapp.PROFILE, seed=3)
    plain.inputs(cutapp.inputs(minutes=1))
    plain.run(until="80s").save(folder / "without.ets")
    return folder / "with.ets"


def cuts(session: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    assert main(["show", str(session), "--cuts", "--json"]) == 0
    found: list[dict[str, object]] = json.loads(capsys.readouterr().out)["cuts"]
    assert found
    return found


def test_show_lists_the_cuts(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = cuts(session, capsys)
    assert main(["show", str(session), "--cuts"]) == 0
    text = capsys.readouterr().out
    assert f"{len(listed)} consistent cut(s)" in text and str(listed[-1]["id"]) in text


@pytest.mark.parametrize("form", ["id", "time", "span"])
def test_replay_from_each_form(form: str, session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    last = cuts(session, capsys)[-2]
    nodes = last["nodes"]
    assert isinstance(nodes, dict)
    seq = int(str(nodes["rover-1"]).rsplit(":", 1)[1])
    after = next(s for s in Session.open(session).spans  # rover-1's first step after the whole cut
                 if s.node == "rover-1" and s.seq > seq and s.start > int(str(last["at_ns"])))
    given = {"id": str(last["id"]), "time": str(last["at"]), "span": after.ref}[form]
    assert main(["replay", str(session), "--app", APP, "--from", given, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from_cut"]["id"] == last["id"] and report["fidelity"] == 1.0
    assert main(["replay", str(session), "--app", APP, "--from", given]) == 0
    assert f"from    cut {last['id']}" in capsys.readouterr().out


@pytest.mark.parametrize(("given", "says"), [
    ("c999", "no such cut"),
    ("1s", "no consistent cut at or before 1s"),
    ("soon", "expected a cut id (c12), a virtual time (59m) or a span ref"),
    ("rover-9:4", "no node 'rover-9'"),
    ("rover-1:x", "bad span reference 'rover-1:x'"),
])
def test_bad_from_is_a_one_line_usage_error(given: str, says: str, session: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(session), "--app", APP, "--from", given]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_session_without_snapshots_says_how_to_take_them(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(session.with_name("without.ets")), "--app", APP, "--from", "c1"]) == 2
    err = capsys.readouterr().err
    assert "no state snapshots" in err and "--snapshot-every" in err and err.count("\n") == 1
    assert main(["show", str(session.with_name("without.ets")), "--cuts"]) == 0
    assert "0 consistent cut(s) from 0 snapshot(s)" in capsys.readouterr().out


def test_a_saved_replay_from_a_cut_is_a_whole_session(session: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    last = cuts(session, capsys)[-2]
    out = tmp_path / "saved.ets"
    assert main(["replay", str(session), "--app", APP, "--from", str(last["id"]), "--save", str(out)]) == 0
    capsys.readouterr()
    recorded, saved = Session.open(session), Session.open(out)
    def shape(opened: Session) -> list[tuple[object, ...]]:  # full clocks: each file may store them by reference
        return [(s.ref, s.kind, s.name, s.start, opened.index.clock(s))
                for s in sorted(opened.spans, key=lambda s: (s.node, s.seq))]

    assert shape(saved) == shape(recorded)
    assert main(["replay", str(out), "--app", APP, "--json"]) == 0  # from its beginning, faithfully
    assert json.loads(capsys.readouterr().out)["fidelity"] == 1.0


@pytest.mark.parametrize("rng", [[3, [1, 2, 3], None], [3, [2**40] * 625, None]])
def test_a_tampered_snapshot_is_a_one_line_error_not_a_crash(rng: object, session: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A session is data from elsewhere: an rng position `random` refuses (it was exit 3, a
    ValueError from `setstate` in the middle of restoring the grid) is refused when read."""
    import msgspec

    from edgetrace._codec import encode
    from edgetrace._snapshot import RNG_BLOB, is_snapshot
    from edgetrace._writer import SessionWriter

    original = Session(session)
    tampered = tmp_path / "tampered.ets"
    with SessionWriter(tampered, original.manifest) as w:
        for sha in original.blob_ids():
            w.put_blob(original.blob(sha), sha)
        bad = w.put_blob(encode(rng))
        w.append([msgspec.structs.replace(s, blobs={**s.blobs, RNG_BLOB: bad}) if is_snapshot(s) else s
                  for s in original.spans])
    cut = cuts(tampered, capsys)[-1]["id"]
    assert main(["replay", str(tampered), "--app", APP, "--from", str(cut)]) == 2
    err = capsys.readouterr().err
    assert "rng position" in err and err.count("\n") == 1 and "Traceback" not in err



def test_an_unreadable_payload_in_flight_is_a_replay_error() -> None:
    """The exact payload of a message in flight across a cut is a blob from the file: one that
    is not MessagePack stops the replay with a ReplayError (one line, exit 2), not a crash."""
    from types import SimpleNamespace

    from edgetrace._errors import ReplayError
    from edgetrace._records import SpanKind
    from edgetrace._snapshot import MESSAGE_BLOB
    from edgetrace.replay._resume import _payload

    blobs = {"good": b"\x92\x01\x02", "bad": b"\xc1"}
    recording = SimpleNamespace(session=SimpleNamespace(blob=blobs.__getitem__))
    sent = Span(node="a", seq=3, kind=SpanKind.SEND, name="m", blobs={MESSAGE_BLOB: "good"})
    assert _payload(recording, sent, "preview") == [1, 2]
    assert _payload(recording, Span(node="a", seq=4, kind=SpanKind.SEND, name="m"), "preview") == "preview"
    with pytest.raises(ReplayError, match="a:5, in flight across the cut, cannot be read"):
        _payload(recording, Span(node="a", seq=5, kind=SpanKind.SEND, name="m", blobs={MESSAGE_BLOB: "bad"}), None)


@pytest.mark.parametrize(("given", "period"), [("10s", 10_000_000_000), ("250ms", 250_000_000), ("0", 0),
                                               ("off", 0), ("0s", 0)])
def test_a_snapshot_period_is_a_duration_or_off(given: str, period: int) -> None:
    from edgetrace.cli._agent import snapshot_period

    assert snapshot_period(given) == period


@pytest.mark.parametrize("given", ["abc", "0.000001ns", "5"])
def test_a_snapshot_period_that_is_not_one_is_refused(given: str) -> None:
    """Not silently off: a period that rounds to 0 ns would take no snapshots and say nothing."""
    from edgetrace._errors import UsageError
    from edgetrace.cli._agent import snapshot_period

    with pytest.raises(UsageError, match="bad --snapshot-every"):
        snapshot_period(given)
