"""Races: two nodes write one key concurrently; the clocks list it, a replay confirms it."""

from __future__ import annotations

from typing import Any

from edgetrace.agents import App, Context, GridProfile
from edgetrace.replay import Replayer
from edgetrace.replay._invariants import parse_invariant
from edgetrace.replay.testing import GridHarness

app = App("door", state_host="hub")
PROFILE = GridProfile.from_mapping("lan", {"links": [{"from": "a", "to": "hub", "latency": "10ms"},
                                                     {"from": "b", "to": "hub", "latency": "20ms"}],
                                           "default": {"latency": "10ms"}})


@app.on("set", nodes=["a", "b"][0])
async def on_set_a(ctx: Context, _: Any) -> None:
    await ctx.state.put("door", "a")  # a's write lands first: 10 ms to the hub
    await ctx.sleep(0.1)
    door = await ctx.state.get("door")
    decision = await ctx.decide("open", {"door": door})
    if decision.value == "open":
        await ctx.act("open")


@app.on("set", nodes="b")
async def on_set_b(ctx: Context, _: Any) -> None:
    await ctx.state.put("door", "b")


app.policy("open", lambda doc: {"decision": "open" if doc["door"] == "b" else "stay"})


def _session(tmp_path: Any) -> Any:
    grid = GridHarness(app, ["a", "b", "hub"], profile=PROFILE)
    grid.input("a", "set", None, at="0s").input("b", "set", None, at="0s")
    return grid.run(until="2s").save(tmp_path / "door.ets")


def test_the_race_is_listed_and_confirmed_by_replaying_the_other_order(tmp_path):
    replayer = Replayer(_session(tmp_path), app=app)
    check = parse_invariant("never act(open)")
    listed, _ = replayer.run(invariants=[check])
    assert sorted(r["kind"] for r in listed.races) == ["write/read", "write/write"]  # b's write races a's read too
    race = next(r for r in listed.races if r["kind"] == "write/write")
    assert race["key"] == "door"
    assert {race["first"].split(":")[0], race["second"].split(":")[0]} == {"a", "b"}
    assert not race["confirmed"] and "--confirm-races" in listed.render_text()
    assert listed.violations  # a wrote first, b second: a reads "b" and opens

    confirmed, _ = replayer.run(invariants=[check], confirm_races=True)
    race = next(r for r in confirmed.races if r["kind"] == "write/write")
    assert race["confirmed"].startswith("confirmed")
    assert any("open on a" in c and "'stay'" in c for c in race["changes"])  # the decision flips
    assert any("never act(open): 0 violation(s) instead of 1" in c for c in race["changes"])


def test_ordered_writes_are_not_a_race(tmp_path):
    sequential = App("seq", state_host="hub")

    @sequential.on("go", nodes="a")
    async def go(ctx: Context, _: Any) -> None:
        await ctx.state.put("k", 1)
        await ctx.send("b", "next", None)

    @sequential.on("next", nodes="b")
    async def nxt(ctx: Context, _: Any) -> None:
        await ctx.state.put("k", 2)

    run = GridHarness(sequential, ["a", "b", "hub"], profile=PROFILE).input("a", "go", None).run(until="1s")
    report, _ = Replayer(run.save(tmp_path / "seq.ets"), app=sequential).run()
    assert report.races == []
