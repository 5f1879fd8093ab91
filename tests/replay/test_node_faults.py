"""Node faults mean what they say: a crash loses the node's memory, a pause freezes its time."""

from __future__ import annotations

from typing import Any

from edgetrace.agents import App, CallTimeout, Context, GridProfile
from edgetrace.replay.testing import GridHarness

FIXED = GridProfile.from_mapping("fixed", {"default": {"latency": "10ms"}})

app = App("leases", state_host="")

@app.on_start(nodes="base")
async def on_start(ctx: Context, _: None) -> None:
    ctx.local["leases"] = {}
    ctx.log("leases rebuilt")


@app.on("claim", nodes="base")
async def on_claim(ctx: Context, req: dict[str, Any]) -> bool:
    leases: dict[int, str] = ctx.local.setdefault("leases", {})
    if leases.get(req["row"], req["drone"]) != req["drone"]:
        return False
    leases[req["row"]] = req["drone"]
    return True


@app.on("scan", nodes="drone-*")
async def on_scan(ctx: Context, scan: dict[str, Any]) -> None:
    try:
        granted = await ctx.call("base", "claim", {"drone": ctx.node, "row": scan["row"]}, timeout=scan.get("timeout", 5))
    except CallTimeout:
        ctx.log("claim timed out")
        return
    if granted:
        await ctx.act("treat", row=scan["row"])


@app.on("nap", nodes="drone-*")
async def on_nap(ctx: Context, nap: dict[str, float]) -> None:
    await ctx.sleep(nap["for"])
    ctx.log("awake", at=ctx.now())


def _grid(*faults: str) -> GridHarness:
    return GridHarness(app, ["base", "drone-1", "drone-2"], profile=FIXED, faults=faults)


def test_a_crash_loses_the_lease_table_in_ctx_local():
    def run(*faults: str) -> list[str]:
        grid = _grid(*faults)
        grid.input("drone-1", "scan", {"row": 3}, at="0.1s")
        grid.input("drone-2", "scan", {"row": 3}, at="2s")
        return [s.node for s in grid.run(until="5s").acts("treat")]

    assert run() == ["drone-1"]  # drone-1 holds row 3, so drone-2 is refused
    assert run("crash(node=base, at=1s, restart=1.5s)") == ["drone-1", "drone-2"]  # the table died with the base


def test_start_up_handlers_run_at_start_and_after_each_restart():
    grid = _grid("crash(node=base, at=1s, restart=1.5s)")
    result = grid.run(until="3s")
    starts = [s for s in result.find("input") if s.name == "edgetrace.start"]
    assert [(s.node, s.start) for s in starts] == [("base", 0), ("base", 1_500_000_000)]
    assert [s.trace for s in result.find("log") if s.attrs.get("edgetrace.message") == "leases rebuilt"] \
        == ["base/start", "base/restart-1"]


def test_calls_in_flight_die_with_the_caller():
    grid = _grid("crash(node=drone-1, at=0.105s, restart=0.11s)")
    grid.input("drone-1", "scan", {"row": 3}, at="0.1s")  # the reply comes at 0.12 s, after the restart
    result = grid.run(until="5s")
    assert result.acts("treat") == []
    late = [s for s in result.find("recv") if s.node == "drone-1"]
    assert late and all(s.attrs.get("edgetrace.late") for s in late)  # the answer found nobody waiting


def test_a_pause_freezes_the_nodes_timers():
    def woke(*faults: str) -> int:
        grid = _grid(*faults)
        grid.input("drone-1", "nap", {"for": 1.0}, at="0s")
        (log,) = [s for s in grid.run(until="10s").find("log") if s.attrs.get("edgetrace.message") == "awake"]
        return log.start

    assert woke() == 1_000_000_000
    assert woke("pause(node=drone-1, at=0.5s, for=2s)") == 2_500_000_000  # it wakes when the pause ends


def test_a_pause_freezes_call_timeouts_too():
    grid = _grid("pause(node=drone-1, at=0.2s, for=3s)", "pause(node=base, at=0s, for=10s)")
    grid.input("drone-1", "scan", {"row": 1, "timeout": 0.5}, at="0.1s")
    result = grid.run(until="20s")
    timeout = next(s for s in result.find("recv") if s.error.startswith("timeout"))
    # due at 0.6 s, inside the pause: it fires when the node resumes, as an overdue timer of a
    # stopped process does — not while the node is frozen
    assert timeout.end == 3_200_000_000
    assert result.find("log")[-1].attrs["edgetrace.message"] == "claim timed out"
