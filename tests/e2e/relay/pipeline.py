"""A probe app written from the docs: sensors gossip readings to peers, a coordinator
aggregates with state, leaders are elected by start-up handlers, pumps act on thresholds."""
from __future__ import annotations

from typing import Any

from edgetrace.agents import App, CallError, CallTimeout, Context

app = App("relay", state_host="coord")
app.initial_state = {"total": 0}


def pump_policy(doc: dict[str, Any]) -> dict[str, Any]:
    hot = doc["avg"] > 0.6
    return {"decision": "pump" if hot else "idle", "fired": ["hot"] if hot else []}


app.policy("pump_policy", pump_policy)


@app.on_start(nodes="coord")
async def coord_start(ctx: Context, _: None) -> None:
    ctx.local["seen"] = {}
    ctx.log("coord up", at=ctx.now())


@app.on_start(nodes="sensor-*")
async def sensor_start(ctx: Context, _: None) -> None:
    ctx.local["n"] = 0


@app.on("reading", nodes="sensor-*")
async def reading(ctx: Context, r: dict[str, Any]) -> None:
    ctx.local["n"] = ctx.local.get("n", 0) + 1
    await ctx.sleep(ctx.rng.uniform(0.001, 0.02))
    peer = f"sensor-{(int(ctx.node.split('-')[1]) % 3) + 1}"
    if peer != ctx.node:
        await ctx.send(peer, "gossip", {"from": ctx.node, "v": r["v"]})
    try:
        agg = await ctx.call("coord", "report", {"v": r["v"], "n": ctx.local["n"]}, timeout=0.4)
    except (CallTimeout, CallError):
        ctx.log("coord unreachable")
        return
    d = await ctx.decide("pump_policy", {"avg": agg["avg"]})
    if d.value == "pump":
        await ctx.act("pump", level=round(agg["avg"], 3))


@app.on("gossip", nodes="sensor-*")
async def gossip(ctx: Context, g: dict[str, Any]) -> None:
    ctx.local.setdefault("heard", []).append(g["from"])
    if len(ctx.local["heard"]) % 2 == 0:
        await ctx.state.put(f"heard/{ctx.node}", len(ctx.local["heard"]), timeout=0.5)


@app.on("report", nodes="coord")
async def report(ctx: Context, r: dict[str, Any]) -> dict[str, Any]:
    seen = ctx.local.setdefault("seen", {})
    seen[ctx.now() % 7] = r["v"]
    total = await ctx.state.get("total", 0)
    await ctx.state.put("total", total + 1)
    vals = list(seen.values())
    return {"avg": sum(vals) / len(vals), "total": total + 1, "t": ctx.now()}
