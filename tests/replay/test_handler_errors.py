"""A handler's exception is a finding: named with its line in record, show and replay reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgetrace import SpanKind
from edgetrace.agents import App, Context
from edgetrace.cli import main
from edgetrace.replay import Replayer
from edgetrace.replay.faults import FaultPlan
from edgetrace.replay.testing import GridHarness

app = App("buggy", state_host="")
app.model("pest", func=lambda x: {"pest": x > 0.5})


@app.on("scan", nodes="drone-*")
async def on_scan(ctx: Context, scan: dict[str, Any]) -> None:
    seen = await ctx.infer("pest", scan["score"])
    if scan.get("row") is None:
        raise KeyError("row")  # the app's bug, on a line the reports must name
    if seen["pest"]:
        await ctx.act("treat", row=scan["row"])


RAISE_LINE = 24


def _session(tmp_path: Path) -> Path:
    grid = GridHarness(app, ["drone-1", "drone-2"])
    grid.input("drone-1", "scan", {"score": 0.9, "row": 1}, at="0.1s")
    grid.input("drone-2", "scan", {"score": 0.2}, at="0.2s")  # no row: KeyError
    return grid.run(until="2s").save(tmp_path / "buggy.ets")


def test_the_recorded_error_names_its_type_message_and_line(tmp_path):
    run = GridHarness(app, ["drone-1"]).input("drone-1", "scan", {"score": 0.2}, at="0s").run(until="1s")
    (err,) = [s for s in run.spans if s.name == "handler.error"]
    assert err.kind is SpanKind.LOG and err.error == "KeyError: 'row'"
    assert err.attrs["exception.type"] == "KeyError"
    assert err.attrs["edgetrace.code"] == f"test_handler_errors.py:{RAISE_LINE}"
    assert "raise KeyError" in err.attrs["exception.stacktrace"]
    assert "edgetrace" not in err.attrs["exception.stacktrace"].replace("test_handler_errors", "")
    infer = run.find("infer")[0]
    assert infer.attrs["edgetrace.code"] == "test_handler_errors.py:22"  # every step knows its line


def test_a_faithful_replay_says_the_recording_had_errors(tmp_path, capsys):
    session = _session(tmp_path)
    report, _ = Replayer(session, app=app).run()
    assert report.fidelity == 1.0
    assert [e["at"] for e in report.recorded_errors] == [f"test_handler_errors.py:{RAISE_LINE}"]
    assert all(not e["new"] for e in report.handler_errors)
    text = report.render_text()
    assert f"the recording itself has 1 handler error(s): KeyError: 'row' at test_handler_errors.py:{RAISE_LINE}" in text


def test_errors_that_only_the_replay_has_are_listed_with_their_line(tmp_path):
    session = _session(tmp_path)
    plan = FaultPlan.parse(["model(name=pest, fault=error)"])
    report, _ = Replayer(session, app=app).run(plan=plan)
    new = [e for e in report.handler_errors if e["new"]]
    assert len(new) == 1 and new[0]["trace"] == "scan-0001"
    assert new[0]["error"].startswith("ModelError") or "injected fault" in new[0]["error"]
    data = json.loads(report.to_json())
    assert data["handler_errors"]["new"] == 1 and data["handler_errors"]["recorded"] == 1
    assert "HANDLER ERRORS — 1 new in this replay" in report.render_text()


def test_show_marks_handler_errors(tmp_path, capsys):
    session = _session(tmp_path)
    assert main(["show", str(session)]) == 0
    out = capsys.readouterr().out
    assert f"errors   1 handler error in 1 trace: KeyError: 'row' at test_handler_errors.py:{RAISE_LINE}" in out
    assert main(["show", str(session), "--trace", "scan-0002"]) == 0
    assert f"ERROR KeyError: 'row' at test_handler_errors.py:{RAISE_LINE}" in capsys.readouterr().out
