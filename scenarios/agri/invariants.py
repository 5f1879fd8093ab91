"""The agri scenario's safety property, `no-spray-without-weed`, in the invariant language.

It lives with the scenario, not in the replayer: the replayer knows invariants in general,
the scenario knows what a tractor must never do. `scenario.py` declares it on the app.
"""

from __future__ import annotations

from edgetrace.replay import Invariant, parse_invariant

__all__ = ["no_spray_without_weed"]


def no_spray_without_weed(threshold: float = 0.8) -> Invariant:
    """No spray unless the model saw a weed, confidently, first (in the same trace)."""
    text = f'every act(spray) after infer where output.type == "weed_detected" and output.confidence > {threshold}'
    inv = parse_invariant(text, name="no-spray-without-weed")
    inv.description = f"every spray is preceded in its trace by a weed detection with confidence > {threshold}"
    return inv
