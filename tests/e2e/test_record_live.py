"""`edgetrace record` as a user meets it: it drains, runs start-up handlers, checks artifacts
up front and says what went wrong in the app.

Each test writes a small scenario folder (an app and its scenario) and records it as real
processes on loopback, then reads the session back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgetrace._records import SpanKind, Status
from edgetrace._session import Session

pytestmark = pytest.mark.slow

SCENARIO = '''
from pathlib import Path

from pipeline import app

from edgetrace.agents import GridProfile, Scenario, ScheduledInput


def inputs(seed: int, size: int) -> list[ScheduledInput]:
    return [ScheduledInput(0.05 + 0.1 * i, "worker", "job", f"job-{i}", {"n": i}) for i in range(INPUTS)]


SCENARIO = Scenario(
    name="slowend", app=app, app_ref=app.reference(), nodes=lambda size: ["boss", "worker"], inputs=inputs,
    profiles={"lan": GridProfile.from_mapping("lan", {"default": {"latency_min": "1ms", "latency_max": "5ms"}})},
    default_profile="lan", folder=Path(__file__).resolve().parent, default_size=1,
)
'''

PIPELINE = '''
from pathlib import Path

from edgetrace.agents import App, Context

app = App("slowend")
HERE = Path(__file__).resolve().parent
{extra}


@app.on_start(nodes="boss")
async def started(ctx: Context, _: None) -> None:
    ctx.local["jobs"] = 0
    ctx.log("boss up")


@app.on("job", nodes="worker")
async def job(ctx: Context, req: dict) -> None:
    if req["n"] == {last}:
        await ctx.sleep({last_takes})  # the last job is the slow one: the recording must wait for it
    {raise_line}
    await ctx.send("boss", "done", {{"n": req["n"]}})


@app.on("done", nodes="boss")
async def done(ctx: Context, req: dict) -> None:
    ctx.local["jobs"] = ctx.local.get("jobs", 0) + 1
    ctx.log("job done", n=req["n"], total=ctx.local["jobs"])
'''


def _scenario(root: Path, *, inputs: int = 3, last_takes: float = 3.0, raise_line: str = "",
              extra: str = "") -> Path:
    folder = root / "slowend"
    folder.mkdir()
    (folder / "scenario.py").write_text(SCENARIO.replace("INPUTS", str(inputs)))
    (folder / "pipeline.py").write_text(PIPELINE.format(last=inputs - 1, last_takes=last_takes,
                                                        raise_line=raise_line or "pass", extra=extra))
    return folder


def _record(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGETRACE_DATA": str(folder.parent / "data")}
    return subprocess.run([sys.executable, "-m", "edgetrace", "record", str(folder), "--out", str(out), *extra],
                          capture_output=True, text=True, cwd=folder.parent, env=env, timeout=300)


def test_record_waits_for_a_slow_last_handler_and_runs_start_up_handlers(tmp_path: Path) -> None:
    out = tmp_path / "run.ets"
    rec = _record(_scenario(tmp_path, inputs=3, last_takes=3.0), out, "--json")
    assert rec.returncode == 0, rec.stderr
    summary = json.loads(rec.stdout)
    assert summary["drain"]["quiet"] is True and summary["agent_failures"] == []
    assert summary["drain"]["seconds"] >= 2.5  # it waited for the 3 s handler, not a fixed settle time
    session = Session.open(out)
    errors = [s for s in session.spans if s.status is Status.ERROR]
    assert errors == []
    logs = [s for s in session.spans if s.kind is SpanKind.LOG and s.node == "boss" and s.trace.startswith("job-")]
    assert len(logs) == 3  # the slow job's message arrived and was handled before the agents stopped
    starts = [s for s in session.spans if s.kind is SpanKind.INPUT and s.name == "edgetrace.start"]
    assert [(s.node, s.trace) for s in starts] == [("boss", "boss/start")]
    # recorded here, by this user: the trust list in the data folder lets replay run the app
    env = {**os.environ, "EDGETRACE_DATA": str(tmp_path / "data")}
    replay = subprocess.run([sys.executable, "-m", "edgetrace", "replay", str(out), "--json"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=300, env=env)
    assert replay.returncode == 0, replay.stderr
    report = json.loads(replay.stdout)
    assert report["divergence_count"] == 0 and report["steps"]["matched"] == report["steps"]["recorded"] == 14


def test_the_drain_timeout_ends_a_run_that_never_goes_quiet_and_names_what_was_busy(tmp_path: Path) -> None:
    out = tmp_path / "run.ets"
    began = time.monotonic()
    rec = _record(_scenario(tmp_path, inputs=2, last_takes=600.0), out, "--drain-timeout", "2")
    assert rec.returncode == 0, rec.stderr
    assert time.monotonic() - began < 120
    warning = next(line for line in rec.stdout.splitlines() if "drain timeout" in line)
    assert "worker: 1 handler(s) running" in warning
    assert out.is_file()


def test_a_handler_error_is_summarised_by_record_with_its_line(tmp_path: Path) -> None:
    out = tmp_path / "run.ets"
    folder = _scenario(tmp_path, inputs=3, last_takes=0.0, raise_line='req["missing"]')
    rec = _record(folder, out)
    assert rec.returncode == 0, rec.stderr
    said = next(line for line in rec.stdout.splitlines() if "handler error" in line)
    assert "3 handler errors in 3 traces" in said and "KeyError" in said and "pipeline.py:" in said
    rec_json = _record_again(folder, tmp_path / "again.ets")
    (group,) = rec_json["handler_errors"]
    assert group["count"] == 3 and "pipeline.py:" in group["at"] and group["error"].startswith("KeyError")


def _record_again(folder: Path, out: Path) -> dict:
    rec = _record(folder, out, "--json")
    assert rec.returncode == 0, rec.stderr
    return json.loads(rec.stdout)


def test_a_broken_policy_in_the_app_stops_record_before_anything_starts(tmp_path: Path) -> None:
    folder = _scenario(tmp_path, extra='app.policy("gate", HERE / "gate.rego")')
    (folder / "gate.rego").write_text("package gate\n\ndecision := {  # never closed\n")
    out = tmp_path / "run.ets"
    began = time.monotonic()
    rec = _record(folder, out)
    assert rec.returncode == 2
    lines = rec.stderr.strip().splitlines()
    assert len(lines) == 1 and "gate.rego" in lines[0], rec.stderr
    assert rec.stdout == "" and not out.exists()
    assert time.monotonic() - began < 60


def test_an_agent_on_its_own_refuses_a_broken_policy_in_one_line(tmp_path: Path) -> None:
    folder = _scenario(tmp_path, extra='app.policy("gate", HERE / "gate.rego")')
    (folder / "gate.rego").write_text(textwrap.dedent("""\
        package gate
        decision := "x" if {
    """))
    env = {**os.environ, "EDGETRACE_DATA": str(tmp_path / "data"), "EDGETRACE_TOKEN": "t" * 32}
    agent = subprocess.run([sys.executable, "-m", "edgetrace", "agent", "--app", str(folder / "pipeline.py") + ":app",
                            "--node", "worker", "--hub", "127.0.0.1:9", "--session", "s1"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert agent.returncode == 2
    assert len(agent.stderr.strip().splitlines()) == 1 and "gate.rego" in agent.stderr


def test_record_audit_names_each_call_a_replay_cannot_repeat_at_its_line(tmp_path: Path) -> None:
    folder = _scenario(tmp_path, inputs=3, last_takes=0.0, raise_line='ctx.local["seen"] = time.time()',
                       extra="import time")
    line = next(i for i, text in enumerate((folder / "pipeline.py").read_text().splitlines(), 1)
                if "time.time()" in text)
    out = tmp_path / "run.ets"
    rec = _record(folder, out, "--audit")
    assert rec.returncode == 1, rec.stderr  # like a linter: findings fail the command, the session is written
    assert f"time.time() at pipeline.py:{line} on worker (3×)" in rec.stdout
    assert out.is_file()
    (tmp_path / "clean").mkdir()
    clean = _scenario(tmp_path / "clean", inputs=2, last_takes=0.0)
    rec = _record(clean, tmp_path / "clean.ets", "--audit", "--json")
    assert rec.returncode == 0, rec.stderr
    assert json.loads(rec.stdout)["audit"] == []
