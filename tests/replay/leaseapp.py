"""A lease-based orchard for the causal-cut tests: a lost message on one drone lets another treat.

The base leases rows (a lease lasts 0.3 s unless renewed; the table lives in `ctx.local`). A
drone claims a row, treats it while renewing its lease every 0.2 s, then releases it. Drop the
drones' renewals and a lease runs out mid-treatment: the base grants the row to the next drone,
and two drones treat one row at once — the second drone's trace looks fine; the cause is the
first drone's lost renewal.
"""

from __future__ import annotations

from typing import Any

from edgetrace.agents import App, Context, GridProfile

app = App("leases", state_host="")
LEASE_S = 0.3
EXCLUSION = "never concurrent act(treat) with act(treat) on same args.row"
BETWEEN = "never act(treat) after act(treat) on same args.row unless recv(release) between"
PROFILE = GridProfile.from_mapping("lan", {"default": {"latency": "10ms"}})
NODES = ["base", "drone-1", "drone-2"]


@app.on("claim", nodes="base")
async def on_claim(ctx: Context, req: dict[str, Any]) -> bool:
    leases: dict[int, list[Any]] = ctx.local.setdefault("leases", {})
    held = leases.get(req["row"])
    now = ctx.now()
    if held is not None and held[0] != req["drone"] and held[1] > now:
        return False
    leases[req["row"]] = [req["drone"], now + LEASE_S]
    return True


@app.on("renew", nodes="base")
async def on_renew(ctx: Context, req: dict[str, Any]) -> None:
    held = ctx.local.setdefault("leases", {}).get(req["row"])
    if held is not None and held[0] == req["drone"]:
        held[1] = ctx.now() + LEASE_S


@app.on("release", nodes="base")
async def on_release(ctx: Context, req: dict[str, Any]) -> None:
    leases = ctx.local.setdefault("leases", {})
    if leases.get(req["row"], [None])[0] == req["drone"]:
        del leases[req["row"]]


@app.on("scan", nodes="drone-*")
async def on_scan(ctx: Context, scan: dict[str, Any]) -> None:
    me = {"drone": ctx.node, "row": scan["row"]}
    if not await ctx.call("base", "claim", me, timeout=1.0):
        ctx.log("row busy", row=scan["row"])
        return
    await ctx.act("treat", row=scan["row"])
    for _ in range(3):
        await ctx.sleep(0.2)
        await ctx.send("base", "renew", me)
    await ctx.send("base", "release", me)


def feed(grid: Any) -> Any:
    """drone-1 treats row 1 from 0.1 s; drone-2 asks at 0.5 s (refused while drone-1 holds it) and
    again at 1.5 s (after drone-1's release: a sequential treatment, as it should be)."""
    grid.input("drone-1", "scan", {"row": 1}, at="0.1s")
    grid.input("drone-2", "scan", {"row": 1}, at="0.5s")
    grid.input("drone-2", "scan", {"row": 1}, at="1.5s")
    return grid
