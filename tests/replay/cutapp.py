"""A small grid for replay from a cut: node memory, a state store, seeded draws, calls, and
slow fire-and-forget messages that are still in flight when a snapshot is taken."""

from __future__ import annotations

from typing import Any

from edgetrace.agents import App, Context

app = App("cutapp", state_host="hub")
app.initial_state = {"total": 0}

NODES = ["hub", "rover-1", "rover-2", "rover-3"]


def route_policy(doc: dict[str, Any]) -> dict[str, Any]:
    busy = doc["seen"] % 3 == 0
    return {"decision": "relay" if busy else "keep", "fired": ["busy"] if busy else []}


app.policy("route_policy", route_policy)


@app.on("frame", nodes="rover-*")
async def frame(ctx: Context, f: dict[str, Any]) -> None:
    ctx.local["seen"] = ctx.local.get("seen", 0) + 1
    ctx.local.setdefault("history", []).append(f["v"])
    del ctx.local["history"][:-5]
    await ctx.sleep(ctx.rng.uniform(0.01, 0.2))
    total = await ctx.state.get("total", 0)
    await ctx.state.put("total", total + f["v"], timeout=2.0)
    d = await ctx.decide("route_policy", {"seen": ctx.local["seen"]})
    if d.value == "relay":
        peer = f"rover-{(int(ctx.node[-1]) % 3) + 1}"
        await ctx.send(peer, "gossip", {"from": ctx.node, "v": f["v"], "jitter": ctx.rng.random()})
    reply = await ctx.call("hub", "tally", {"n": ctx.local["seen"]}, timeout=3.0)
    ctx.local["tally"] = reply["count"]


@app.on("gossip", nodes="rover-*")
async def gossip(ctx: Context, g: dict[str, Any]) -> None:
    heard = ctx.local.setdefault("heard", {})
    heard[g["from"]] = heard.get(g["from"], 0) + 1
    if sum(heard.values()) % 2 == 0:
        await ctx.act("beep", times=sum(heard.values()))


@app.on("tally", nodes="hub")
async def tally(ctx: Context, t: dict[str, Any]) -> dict[str, Any]:
    ctx.local["count"] = ctx.local.get("count", 0) + 1
    await ctx.state.put("tallies", ctx.local["count"])
    return {"count": ctx.local["count"]}


PROFILE = {"default": {"latency_min": "20ms", "latency_max": "300ms"},
           "links": [{"from": "rover-*", "to": "rover-*", "latency_min": "2s", "latency_max": "9s"}]}


def inputs(minutes: int = 3) -> list[tuple[float, str, str, dict[str, Any]]]:
    """A frame per rover every 1.3 s or so, for `minutes` of virtual time."""
    out = []
    for i in range(int(minutes * 60 / 1.3)):
        for j, rover in enumerate(NODES[1:]):
            out.append((round(i * 1.3 + j * 0.37, 3), rover, "frame", {"v": (i * 7 + j) % 11}))
    return out
