"""Replay benchmarks (issue 4), measured side by side in one run.

1. Replay speed in virtual seconds per wall second on a network-bound grid: 24 nodes gossiping
   over slow links (200 ms – 3 s) for an hour of virtual time. Goal ≥ 1,000× (FoundationDB's
   published simulation figure is about 10×).
2. Replay overhead on the agri fleet: replay wall time divided by the time spent re-executing
   its model and rule steps (ONNX Runtime + regopy, timed inside the same run). Goal ≤ 1.3.

Run: python bench/bench_replay.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from edgetrace.agents import App, Context
from edgetrace.replay.testing import GridHarness

S = 1_000_000_000

gossip = App("gossip", state_host="n-00")


@gossip.on("tick", nodes="n-*")
async def on_tick(ctx: Context, tick: dict[str, Any]) -> None:
    for k in range(3):
        peer = f"n-{(int(ctx.node[2:]) + 1 + k * 7) % 24:02d}"
        await ctx.send(peer, "rumour", {"from": ctx.node, "n": tick["n"]})


@gossip.on("rumour", nodes="n-*")
async def on_rumour(ctx: Context, rumour: dict[str, Any]) -> None:
    if rumour["n"] % 4 == 0:
        ctx.log("heard", n=rumour["n"])


def bench_speed(virtual_s: int) -> dict[str, float]:
    nodes = [f"n-{i:02d}" for i in range(24)]
    grid = GridHarness(gossip, nodes, seed=1, profile={"default": {"latency_min": "200ms", "latency_max": "3s"}})
    for i in range(virtual_s // 10):  # every node gets a tick every 10 virtual seconds
        for j, node in enumerate(nodes):
            grid.input(node, "tick", {"n": i}, at=i * 10 + j * 0.4)
    t0 = time.perf_counter()
    run = grid.run(until=f"{virtual_s + 60}s")
    wall = time.perf_counter() - t0
    messages = sum(1 for s in run.spans if s.kind.value == "recv")
    return {"virtual_s": run.virtual_ns / S, "wall_s": wall, "speed": run.virtual_ns / S / wall,
            "messages": messages, "msgs_per_s": messages / wall}


def bench_overhead(session: Path) -> dict[str, float]:
    from edgetrace.agents._rules import RegoPolicy
    from edgetrace.replay import replay_session
    from edgetrace.scenarios.agri.runner import ExtractorRunner

    spent = [0.0]

    def timed(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t0
        return wrapper

    original = ExtractorRunner.run, RegoPolicy.evaluate
    ExtractorRunner.run, RegoPolicy.evaluate = timed(original[0]), timed(original[1])
    try:
        t0 = time.perf_counter()
        report, _, _ = replay_session(session, reexecute=True)  # every step run: the memo would hide them
        wall = time.perf_counter() - t0
    finally:
        ExtractorRunner.run, RegoPolicy.evaluate = original
    assert report.fidelity == 1.0, report.fidelity
    return {"wall_s": wall, "compute_s": spent[0], "ratio": wall / spent[0], "steps": report.steps_replayed,
            "virtual_s": report.virtual_ns / S}


def agri_session(folder: Path) -> Path:
    """A fleet recording made on the simulated grid (the live recorder gives the same shape)."""
    from edgetrace.scenarios.agri import scenario as agri

    grid = GridHarness(agri.app, agri.nodes(8), profile=agri.SCENARIO.profiles["good"], seed=1)
    grid.inputs(agri.inputs(seed=1, size=8, duration_s=8.0))
    return grid.run(until="40s").save(folder / "agri.ets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--virtual", type=int, default=3600, help="virtual seconds of gossip")
    args = parser.parse_args()

    speeds = [bench_speed(args.virtual) for _ in range(args.repeats)]
    med = statistics.median(x["speed"] for x in speeds)
    one = speeds[0]
    print(f"replay speed          {med:,.0f} virtual s per wall s  ({one['virtual_s']:.0f} virtual s, "
          f"{one['messages']:,} messages, {statistics.median(x['msgs_per_s'] for x in speeds):,.0f} msg/s; "
          f"goal ≥ 1,000×; FoundationDB ≈ 10×)")
    with tempfile.TemporaryDirectory() as tmp:
        session = agri_session(Path(tmp))
        runs = [bench_overhead(session) for _ in range(args.repeats)]
    ratio = statistics.median(x["ratio"] for x in runs)
    r = runs[0]
    print(f"replay overhead       wall {statistics.median(x['wall_s'] for x in runs) * 1e3:.0f} ms / model+rule "
          f"{statistics.median(x['compute_s'] for x in runs) * 1e3:.0f} ms = {ratio:.2f}  ({r['steps']} steps, "
          f"{r['virtual_s']:.0f} virtual s of the agri fleet; goal ≤ 1.3)")


if __name__ == "__main__":
    main()
