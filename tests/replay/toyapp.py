"""A three-tractor toy pipeline for replayer tests: state round trips, a policy, an action."""

from __future__ import annotations

from typing import Any

from edgetrace.agents import App, CallTimeout, Context, StateUnavailable
from edgetrace.agents._grid import GridProfile, LinkProfile
from edgetrace.agents._scenario import ScheduledInput

app = App("toy", state_host="hub")
app.policy(
    "spray", func=lambda d: {"decision": "spray" if d["weed"] or d["timeout"] else "hold",
                             "fired": ["fallback"] if d["timeout"] else []},
)
app.initial_state = {"zones/blocked": False}


@app.on("frame", nodes="t-*")
async def on_frame(ctx: Context, frame: dict[str, Any]) -> None:
    timeout = False
    try:
        await ctx.state.put(f"seen/{ctx.node}", frame["n"], timeout=1.0)
        await ctx.state.get("zones/blocked", timeout=1.0)
    except (CallTimeout, StateUnavailable):
        timeout = True
    d = await ctx.decide("spray", {"weed": frame["weed"], "timeout": timeout})
    if d.value == "spray":
        await ctx.act("spray", n=frame["n"])
    if frame["n"] % 5 == 0:
        await ctx.send("hub", "report", {"n": frame["n"], "jitter": ctx.rng.randint(0, 9)})


@app.on("report", nodes="hub")
async def on_report(ctx: Context, report: dict[str, Any]) -> None:
    ctx.log("report", n=report["n"])


NODES = ["hub", "t-0", "t-1", "t-2"]
PROFILE = GridProfile("lan", links=(("*", "*", LinkProfile(5_000_000, 400_000_000, 0, 0.05)),))


def inputs(count: int = 30) -> list[ScheduledInput]:
    return [ScheduledInput(i * 0.4 + 1e-6, f"t-{i % 3}", "frame", f"f{i:03d}",
                           {"n": i, "weed": i % 3 == 0}) for i in range(count)]


def record(path: Any, *, seed: int = 1, count: int = 30) -> Any:
    """Run the toy fleet on a simulated grid and write it as a session (a recording for tests)."""
    from edgetrace import Manifest, SessionWriter
    from edgetrace.replay import SimGrid

    grid = SimGrid(app, NODES, seed=seed, profile=PROFILE)
    run = grid.run(inputs(count), until_ns=60_000_000_000)
    manifest = Manifest(app="toy", app_ref="toyapp:app", nodes=run.nodes, seed=seed,
                        meta={"grid": PROFILE.to_dict()})
    with SessionWriter(path, manifest) as w:
        for sha in sorted(run.blobs):
            w.put_blob(run.blobs[sha], sha)
        w.append(run.spans)
        w.seal()
    return path
