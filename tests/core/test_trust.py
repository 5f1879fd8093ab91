"""A session file is data: opening it never imports the code it names (issue 14, defect 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgetrace import Manifest, ReplayError, Session, SessionWriter
from edgetrace._codec import encode_manifest
from edgetrace._frames import FrameType, encode_frame

DATA = Path(__file__).resolve().parents[1] / "data"
EVIL = '''
import pathlib
pathlib.Path({mark!r}).write_text("imported")
from edgetrace.agents import App
app = App("evil")
'''


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetrace", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "EDGETRACE_DATA": str(cwd / "data"), **(env or {})}, timeout=300)


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A session whose (first and only) manifest names a file that records being imported."""
    mark = tmp_path / "IMPORTED"
    code = tmp_path / "evil.py"
    code.write_text(EVIL.format(mark=str(mark)))
    session = tmp_path / "evil.ets"
    with SessionWriter(session, Manifest(session_id="evil", app="evil", app_ref=f"{code}:app")) as w:
        w.seal()
    return session, code, mark


@pytest.mark.parametrize("verb", [["replay"], ["replay", "--json"], ["sweep", "--seeds", "2", "--jobs", "1"]])
def test_replay_and_sweep_refuse_the_sessions_app_ref(evil, tmp_path, verb):
    session, code, mark = evil
    r = _cli(verb[0], str(session), *verb[1:], cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert not mark.exists(), "the session's app_ref was imported"
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert f"--app {code}:app" in r.stderr and "--trust-session" in r.stderr


def test_the_user_can_name_the_app_or_trust_the_session(evil, tmp_path):
    session, code, mark = evil
    _cli("replay", str(session), "--trust-session", "--json", cwd=tmp_path)
    assert mark.exists()
    mark.unlink()
    _cli("replay", str(session), "--app", f"{code}:app", "--json", cwd=tmp_path)
    assert mark.exists()


def test_python_api_refuses_too(evil):
    from edgetrace.replay import Replayer

    session, _code, mark = evil
    with pytest.raises(ReplayError, match="--app"):
        Replayer(session)
    assert not mark.exists()


def test_an_appended_manifest_frame_cannot_change_what_a_session_is(tmp_path, evil):
    """The 175-byte attack: a manifest frame appended to a recorded session re-points app_ref."""
    _, code, mark = evil
    session = tmp_path / "agri.ets"
    shutil.copy(DATA / "agri-demo.ets", session)
    before = Session(session).manifest
    hostile = Manifest(session_id="other", app="evil", app_ref=f"{code}:app", seed=99, scenario="x",
                       models={"event_extractor": "0" * 64}, nodes=["intruder"])
    with open(session, "ab") as fh:
        fh.write(encode_frame(FrameType.MANIFEST, encode_manifest(hostile)))
    after = Session(session).manifest
    for field in Manifest.IDENTITY:
        assert getattr(after, field) == getattr(before, field), field
    assert after.models == before.models
    assert "intruder" in after.nodes  # nodes accumulate: that is what later frames are for
    r = _cli("replay", str(session), "--json", cwd=tmp_path)
    assert not mark.exists()
    assert r.returncode in (0, 1), r.stderr  # the shipped agri app, as recorded


def test_a_hello_from_another_process_cannot_overwrite_the_manifest():
    from edgetrace import HubProtocol, MemorySessionStore
    from edgetrace._wire import Hello

    store = MemorySessionStore()
    hub = HubProtocol(store)
    first = Manifest(session_id="s", app="agri", app_ref="edgetrace.scenarios.agri.scenario:app", seed=1)
    hub.connect().receive(Hello(token="", node="a", session="s", manifest=first))
    hub.connect().receive(Hello(token="", node="b", session="s",
                                manifest=Manifest(app_ref="/tmp/evil.py:app", app="evil", seed=7)))
    stored = store.read("s").manifest
    assert (stored.app_ref, stored.app, stored.seed) == (first.app_ref, "agri", 1)


def test_record_trusts_what_it_recorded_and_only_that(tmp_path, monkeypatch):
    from edgetrace import _trust

    monkeypatch.setenv("EDGETRACE_DATA", str(tmp_path / "data"))
    mine = Manifest(session_id="field-1", app_ref="/src/fleet.py:app")
    with pytest.raises(ReplayError):
        _trust.choose_app(mine, source="s.ets")
    _trust.remember_session(mine)
    assert _trust.choose_app(mine, source="s.ets").ref == "/src/fleet.py:app"
    # the pair is what is trusted: same id, other code is still refused
    with pytest.raises(ReplayError):
        _trust.choose_app(Manifest(session_id="field-1", app_ref="/tmp/evil.py:app"), source="s.ets")
    # a trust list others can write is no trust list
    os.chmod(_trust.trust_file(), 0o666)
    with pytest.raises(ReplayError):
        _trust.choose_app(mine, source="s.ets")


def test_installed_apps_are_trusted(tmp_path, monkeypatch):
    from edgetrace import _trust

    dist = tmp_path / "site" / "fleetpkg-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fleetpkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[edgetrace.apps]\nfleet = fleetpkg.pipeline:app\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert _trust.installed_apps()["fleet"] == "fleetpkg.pipeline:app"
    assert _trust.choose_app(Manifest(app_ref="fleetpkg.pipeline:app"), source="s").reason == "an installed app"
    assert _trust.choose_app(Manifest(), source="s", app="fleet").ref == "fleetpkg.pipeline:app"
    # the shipped scenarios are edgetrace's own code
    assert _trust.choose_app(Manifest(app_ref="edgetrace.scenarios.agri.scenario:app"), source="s")
    with pytest.raises(ReplayError):
        _trust.choose_app(Manifest(app_ref="edgetrace.scenarios.agri.evil:app"), source="s")
