"""A replay of a simulated recording that holds fault records gives every record the recording's clock.

A fault record (what the simulator injected while recording) is history: the replay writes it
back at its seq, right after the step it followed. The message that step sends must still
carry the step's own clock — it once carried the clock after the written-back fault record,
one tick ahead on the sender's entry, so every receiver's clock differed from the recording's.
"""

from __future__ import annotations

from typing import Any

from edgetrace import Session
from edgetrace.agents import App, Context, GridProfile
from edgetrace.replay._replayer import Replayer
from edgetrace.replay.testing import GridHarness

FIXED = GridProfile.from_mapping("fixed", {"default": {"latency": "10ms"}})

app = App("relay", state_host="")


@app.on("ping", nodes="a")
async def on_ping(ctx: Context, body: dict[str, Any]) -> None:
    await ctx.send("b", "note", body)
    reply = await ctx.call("b", "echo", body, timeout=5)
    ctx.log("echoed", value=reply)


@app.on("note", nodes="b")
async def on_note(ctx: Context, body: dict[str, Any]) -> None:
    ctx.log("noted", n=body["n"])


@app.on("echo", nodes="b")
async def on_echo(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    return body


def test_replayed_clocks_equal_the_recordings_when_fault_records_are_written_back(tmp_path):
    grid = GridHarness(app, ["a", "b"], profile=FIXED,
                       faults=["latency(link=a->b, delay=50ms)", "latency(link=b->a, delay=20ms)"])
    for n in range(3):
        grid.input("a", "ping", {"n": n}, at=f"{n}s")
    result = grid.run(until="10s")
    path = result.save(tmp_path / "run.ets")
    recording = Session(path)
    assert any(s.kind.value == "fault" for s in recording.spans)  # the history this is about
    report, run = Replayer(path, app=app).run()
    assert report.fidelity == 1.0
    replayed = {s.ref: s for s in run.spans}
    assert set(replayed) == {s.ref for s in recording.spans}
    from edgetrace import CausalIndex

    index = CausalIndex(run.spans)
    differ = [s.ref for s in recording.spans if recording.index.clock(s) != index.clock(replayed[s.ref])]
    assert differ == []
