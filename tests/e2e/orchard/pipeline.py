"""A test app the way a new user writes one: drones claim orchard rows from a base station.

Five drones each scan rows; a drone claims a row from the base over `ctx.call` (with a timeout
and one retry), asks a model whether the trees have pests, asks a Rego policy whether to treat,
treats, writes what it did — with `ctx.now()` — to shared state, sleeps a random while from
`ctx.rng`, and releases the row. The base keeps its lease table in `ctx.local`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetrace.agents import App, CallError, CallTimeout, Context

HERE = Path(__file__).resolve().parent

app = App("orchard", state_host="base")


def pest_model(inputs: dict[str, Any]) -> dict[str, Any]:
    """Stand-in for an ONNX pest detector: a deterministic score from the leaf features."""
    leaves = inputs["leaves"]
    score = round(sum(leaves) / len(leaves), 4)
    return {"pest": score > 0.5, "score": score}


app.model("pest", func=pest_model)
app.policy("treat_policy", HERE / "treat.rego")


def grant_policy(doc: dict[str, Any]) -> dict[str, Any]:
    held = doc["holder"]
    return {"decision": "grant" if held in (None, doc["drone"]) else "deny",
            "fired": ["free"] if held is None else ["held"]}


app.policy("grant_policy", func=grant_policy)


@app.on("claim", nodes="base")
async def on_claim(ctx: Context, req: dict[str, Any]) -> dict[str, Any]:
    leases: dict[int, str] = ctx.local.setdefault("leases", {})
    decision = await ctx.decide("grant_policy", {"drone": req["drone"], "holder": leases.get(req["row"])})
    if decision.value == "grant":
        leases[req["row"]] = req["drone"]
    return {"granted": decision.value == "grant", "at": ctx.now()}


@app.on("release", nodes="base")
async def on_release(ctx: Context, req: dict[str, Any]) -> None:
    leases: dict[int, str] = ctx.local.setdefault("leases", {})
    if leases.get(req["row"]) == req["drone"]:
        del leases[req["row"]]


async def _claim(ctx: Context, row: int) -> bool:
    for _attempt in range(2):
        try:
            reply = await ctx.call("base", "claim", {"drone": ctx.node, "row": row}, timeout=0.5)
            return bool(reply["granted"])
        except CallTimeout:
            continue
        except CallError:
            return False
    return False


@app.on("scan", nodes="drone-*")
async def on_scan(ctx: Context, scan: dict[str, Any]) -> None:
    started = ctx.now()
    if not await _claim(ctx, scan["row"]):
        ctx.log("row busy", row=scan["row"])
        return
    seen = await ctx.infer("pest", {"leaves": scan["leaves"]})
    decision = await ctx.decide("treat_policy", {"seen": seen, "row": scan["row"]})
    if decision.value == "treat":
        await ctx.act("treat", row=scan["row"])
    await ctx.state.put(f"rows/{scan['row']}", {"by": ctx.node, "at": ctx.now(), "took": ctx.now() - started},
                        timeout=1.0)
    await ctx.sleep(ctx.rng.uniform(0.01, 0.05))
    await ctx.send("base", "release", {"drone": ctx.node, "row": scan["row"]})
