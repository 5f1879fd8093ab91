"""Scenario `agri`: a tractor fleet that sprays herbicide — and the day it sprayed nothing.

Each tractor turns camera captions into events with a small generative model (ONNX
Runtime), writes what it saw to the regional hub, reads the zone's state back, and asks a
Rego policy whether to spray. The hub sits behind a 4G mesh. When a state round trip takes
longer than the 1 s timeout, the deployed policy falls back to a "scheduled pass" rule and
sprays whatever the camera saw: the motivating bug of edgetrace.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from edgetrace.agents import (
    App,
    CallTimeout,
    Context,
    GridProfile,
    Scenario,
    ScheduledInput,
    StateUnavailable,
)
from edgetrace.scenarios.agri.captions import CaptionGenerator
from edgetrace.scenarios.agri.invariants import no_spray_without_weed
from edgetrace.scenarios.agri.runner import ExtractorRunner

FOLDER = Path(__file__).resolve().parent
MODEL = FOLDER / "model" / "event_extractor.onnx"
STATE_TIMEOUT_S = 1.0
BLOCKED_ROWS = frozenset({4, 17, 23, 31})  # buffer strips next to water: never spray

app = App("agri", state_host="hub", version="1")
app.model("event_extractor", MODEL, runner=ExtractorRunner)
app.policy("spray_policy", FOLDER / "policies" / "spray_policy.rego")
app.initial_state = {
    f"zones/row-{row}": {"blocked": row in BLOCKED_ROWS, "sprayed": False} for row in range(1, 61)
}
app.invariant("no-spray-without-weed", no_spray_without_weed(threshold=0.8))


@app.on("frame", nodes="tractor-*")
async def on_frame(ctx: Context, frame: dict[str, Any]) -> None:
    """One camera frame: caption → event → field state → decision → maybe spray."""
    event = await ctx.infer("event_extractor", frame["caption"])
    if event is None:
        ctx.log("frame skipped: the model output failed validation", frame=frame["frame"])
        return
    zone = frame["zone"]
    state: dict[str, Any] = {"available": True}
    try:
        await ctx.state.put(f"events/{ctx.node}", {"zone": zone, **event}, timeout=STATE_TIMEOUT_S)
        state["zone"] = await ctx.state.get(f"zones/{zone}", {}, timeout=STATE_TIMEOUT_S)
    except (CallTimeout, StateUnavailable) as exc:
        state = {"available": False, "reason": str(exc)}
    decision = await ctx.decide("spray_policy", {"event": event, "state": state, "frame": frame["frame"]})
    if decision.value == "spray":
        await ctx.act("spray", zone=zone, frame=frame["frame"])


def nodes(size: int) -> list[str]:
    return ["hub", *(f"tractor-{i:02d}" for i in range(1, size + 1))]


def inputs(seed: int, size: int, *, duration_s: float = 8.0, period_s: float = 1.0) -> list[ScheduledInput]:
    """Camera frames: one per tractor per `period_s`, staggered, captions from a seeded generator."""
    found = []
    for i, node in enumerate(nodes(size)[1:]):
        captions = CaptionGenerator(seed * 1000 + i)
        offset = 0.05 + (i * period_s) / max(size, 1)
        t, n = offset, 0
        while t < duration_s:
            n += 1
            caption = captions.next()
            frame = f"{node}/f{n:04d}"
            found.append(ScheduledInput(
                round(t, 6), node, "frame", frame,
                {"frame": frame, "caption": caption.text, "zone": caption.zone, "truth": caption.event_type},
            ))
            t += period_s
    found.sort(key=lambda x: (x.at, x.node))
    return found


def _profiles() -> dict[str, GridProfile]:
    with open(FOLDER / "profiles.toml", "rb") as fh:
        data = tomllib.load(fh)
    return {name: GridProfile.from_mapping(name, table) for name, table in data.items()}


SCENARIO = Scenario(
    name="agri",
    app=app,
    app_ref="edgetrace.scenarios.agri.scenario:app",
    nodes=nodes,
    inputs=lambda seed, size: inputs(seed, size),
    profiles=_profiles(),
    default_profile="good",
    folder=FOLDER,
    invariants=("no-spray-without-weed",),
    default_size=8,
    description=__doc__ or "",
)
