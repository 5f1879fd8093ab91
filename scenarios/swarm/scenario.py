"""Scenario `swarm`: survey drones that share hazard reports peer to peer.

Six drones sweep a shared corridor of cells, each a couple of steps behind the previous
one. Each scan runs a small ONNX hazard model; a drone that sees a hazard gossips it
straight to every other drone (no hub on the hot path). Before moving into its next cell a
drone asks a route policy, which refuses cells it knows to be hazardous.

Its invariant depends on happens-before between nodes: a drone never moves into a cell
after a hazard report for that cell has causally reached it. The handler below has a
time-of-check/time-of-use race — it snapshots the known hazards *before* running the
model — so a report that arrives during inference is missed. On a good link that window is
rarely hit; with the right latency the replayer finds it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from edgetrace.agents import App, Context, GridProfile, LinkProfile, Scenario, ScheduledInput

FOLDER = Path(__file__).resolve().parent
CORRIDOR = [f"c{r}-{c}" for r in range(4) for c in range(6)]
LAG_STEPS = 2

app = App("swarm", state_host="", version="1")
app.model("hazard", FOLDER / "model" / "hazard.onnx")


def route_policy(doc: dict[str, Any]) -> dict[str, Any]:
    """Move on unless the next cell is a known hazard."""
    blocked = doc["next"] in doc["hazards"]
    return {"decision": "hold" if blocked else "move", "fired": ["known_hazard"] if blocked else ["clear"]}


app.policy("route_policy", func=route_policy)


def _peers(node: str, size: int) -> list[str]:
    return [d for d in drones(size) if d != node]


@app.on("scan", nodes="drone-*")
async def on_scan(ctx: Context, scan: dict[str, Any]) -> None:
    known: set[str] = ctx.local.setdefault("hazards", set())
    snapshot = sorted(known)  # the race: read before the model runs, used after
    out = await ctx.infer("hazard", {"features": np.array([scan["features"]], dtype=np.float32)})
    score = round(float(out["hazard"][0][0]), 4)
    if score > 0.5:
        known.add(scan["cell"])
        for peer in _peers(ctx.node, scan["fleet"]):
            await ctx.send(peer, "hazard", {"cell": scan["cell"], "score": score, "by": ctx.node})
    if scan.get("next"):
        decision = await ctx.decide("route_policy", {"next": scan["next"], "hazards": snapshot})
        if decision.value == "move":
            await ctx.act("move", cell=scan["next"])


@app.on("hazard", nodes="drone-*")
async def on_hazard(ctx: Context, report: dict[str, Any]) -> None:
    ctx.local.setdefault("hazards", set()).add(report["cell"])


def drones(size: int) -> list[str]:
    return [f"drone-{i:02d}" for i in range(1, size + 1)]


def _hazard_cells(seed: int) -> set[str]:
    rng = random.Random(f"swarm-hazards/{seed}")
    return set(rng.sample(CORRIDOR[3:], 5))


def inputs(seed: int, size: int, *, period_s: float = 1.0) -> list[ScheduledInput]:
    """Drone i scans cell k at step k + LAG_STEPS*i; its `next` is the following cell."""
    hazards = _hazard_cells(seed)
    rng = random.Random(f"swarm-readings/{seed}")
    found = []
    for i, node in enumerate(drones(size)):
        for k, cell in enumerate(CORRIDOR):
            step = k + LAG_STEPS * i
            hot = cell in hazards
            features = [round(rng.uniform(0.7, 1.0) if hot else rng.uniform(0.0, 0.3), 3),
                        round(rng.uniform(0.5, 0.9) if hot else rng.uniform(0.0, 0.2), 3),
                        round(rng.uniform(0.0, 0.6), 3), round(rng.uniform(0.0, 0.2), 3)]
            nxt = CORRIDOR[k + 1] if k + 1 < len(CORRIDOR) else ""
            at = step * period_s + i * 0.013
            trace = f"{node}/{cell}"
            found.append(ScheduledInput(round(at, 6), node, "scan", trace,
                                        {"cell": cell, "next": nxt, "features": features, "fleet": size}))
    found.sort(key=lambda x: (x.at, x.node))
    return found


def _no_move_after_hazard() -> Any:
    from edgetrace.replay import parse_invariant

    return parse_invariant(
        "never act(move) after recv(hazard) on args.cell == payload.cell", name="no-move-into-reported-hazard"
    )


app.invariant("no-move-into-reported-hazard", _no_move_after_hazard())

PROFILES = {
    "good": GridProfile("good", "a clear mesh: 20–60 ms between drones",
                        default=LinkProfile(20_000_000, 60_000_000, 0, 0.0)),
    "congested": GridProfile("congested", "a congested mesh: 0.3–1.2 s between drones, 5 % loss",
                             default=LinkProfile(300_000_000, 1_200_000_000, 50_000_000, 0.05)),
}

SCENARIO = Scenario(
    name="swarm",
    app=app,
    app_ref="edgetrace.scenarios.swarm.scenario:app",
    nodes=drones,
    inputs=lambda seed, size: inputs(seed, size),
    profiles=PROFILES,
    default_profile="good",
    folder=FOLDER,
    invariants=("no-move-into-reported-hazard",),
    default_size=6,
    description=__doc__ or "",
)
