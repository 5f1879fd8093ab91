"""The orchard grid: a base and four drones on a slow link, each scanning rows in turn."""

from __future__ import annotations

import random
from pathlib import Path

from pipeline import app

from edgetrace.agents import GridProfile, Scenario, ScheduledInput


def nodes(size: int) -> list[str]:
    return ["base", *(f"drone-{i}" for i in range(1, size + 1))]


def inputs(seed: int, size: int) -> list[ScheduledInput]:
    rng = random.Random(seed)
    found = []
    for i in range(1, size + 1):
        for n in range(5):
            row = rng.randint(1, 4)  # few rows: drones contend for them
            leaves = [round(rng.random(), 3) for _ in range(4)]
            found.append(ScheduledInput(0.05 + 0.4 * n + 0.07 * i, f"drone-{i}", "scan", f"drone-{i}/s{n}",
                                        {"row": row, "leaves": leaves}))
    return sorted(found, key=lambda x: (x.at, x.node))


PROFILES = {
    "field": GridProfile.from_mapping("field", {"default": {"latency_min": "5ms", "latency_max": "60ms"}}),
}

SCENARIO = Scenario(
    name="orchard", app=app, app_ref=app.reference(), nodes=nodes, inputs=inputs, profiles=PROFILES,
    default_profile="field", folder=Path(__file__).resolve().parent, default_size=4,
)
