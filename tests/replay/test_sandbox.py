"""Handler code that breaks determinism is named at its line, and the replay still repeats."""

from __future__ import annotations

import asyncio
import datetime
import random
import threading
import time
from typing import Any

from edgetrace.agents import App, Context
from edgetrace.replay.testing import GridHarness

app = App("sloppy", state_host="")


@app.on("tick", nodes="n")
async def on_tick(ctx: Context, _: Any) -> None:
    stamp = time.time()  # the wall clock
    jitter = random.random()  # the global RNG
    today = datetime.datetime.now()
    box: list[int] = []
    threading.Thread(target=lambda: box.append(1)).start()
    await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2])
    await ctx.send("n", "seen", {"at": stamp, "jitter": jitter, "day": today.isoformat(), "box": box})


def _run() -> Any:
    return GridHarness(app, ["n"]).input("n", "tick", None, at="1s").run(until="2s")


def _line(text: str) -> str:
    from pathlib import Path

    lines = Path(__file__).read_text().splitlines()
    return f"test_sandbox.py:{next(i for i, line in enumerate(lines, 1) if text in line)}"


def test_each_call_is_reported_at_its_line():
    found = {(n["call"], n["at"]) for n in _run().nondeterminism}
    assert {("time.time()", _line("stamp = time.time()")), ("random.random()", _line("jitter = random.random()")),
            ("datetime.now()", _line("today = datetime")), ("threading.Thread.start()", _line("threading.Thread(")),
            ("loop.run_in_executor()", _line("run_in_executor(None"))} <= found


def test_the_stand_ins_keep_the_run_repeatable():
    first, second = _run(), _run()
    sent = [s.attrs["edgetrace.payload"] for s in first.find("send")]
    assert sent == [s.attrs["edgetrace.payload"] for s in second.find("send")]
    assert sent[0]["at"] == 1.0 and sent[0]["box"] == [1]  # virtual time; the thread ran inline


def test_library_and_runtime_calls_are_left_alone():
    before = time.time()
    run = _run()
    assert time.time() >= before  # the real clock again outside the run
    assert all(n["at"].startswith("test_sandbox.py") for n in run.nondeterminism)


def test_the_watchdog_names_a_handler_that_never_yields(capsys):
    from edgetrace.replay import SimGrid

    busy = App("busy", state_host="")

    @busy.on("go", nodes="n")
    async def go(ctx: Context, _: Any) -> None:
        threading.Event().wait(1.5)  # a blocking call: the loop cannot move for 1.5 s

    from edgetrace.replay._recording import RecordedInput

    grid = SimGrid(busy, ["n"], watchdog_s=0.3)
    grid.run([RecordedInput(0, "n", "go", "t", None)], until_ns=10**9)
    assert grid.watchdog.reports and "test_sandbox.py" in grid.watchdog.reports[0]
    assert "has not yielded" in capsys.readouterr().err
