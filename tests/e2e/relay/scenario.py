from __future__ import annotations

import random
from pathlib import Path

from pipeline import app

from edgetrace.agents import GridProfile, Scenario, ScheduledInput


def nodes(size: int) -> list[str]:
    return ["coord", *(f"sensor-{i}" for i in range(1, size + 1))]


def inputs(seed: int, size: int) -> list[ScheduledInput]:
    rng = random.Random(seed)
    out = []
    for i in range(1, size + 1):
        for n in range(8):
            out.append(ScheduledInput(0.05 + 0.25 * n + 0.03 * i, f"sensor-{i}", "reading", f"sensor-{i}/r{n}",
                                      {"v": round(rng.random(), 3)}))
    return sorted(out, key=lambda x: (x.at, x.node))


PROFILES = {"lossy": GridProfile.from_mapping("lossy", {"default": {"latency_min": "5ms", "latency_max": "150ms",
                                                                    "loss": 0.03}})}
SCENARIO = Scenario(name="relay", app=app, app_ref=app.reference(), nodes=nodes, inputs=inputs, profiles=PROFILES,
                    default_profile="lossy", folder=Path(__file__).resolve().parent, default_size=3)
