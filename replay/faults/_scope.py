"""Scopes shared by many fault kinds: a time window, and a probability of applying."""

from __future__ import annotations

import random
from dataclasses import dataclass

from edgetrace.replay.faults._base import Fault, param
from edgetrace.replay.faults._params import DURATION, PROBABILITY

__all__ = ["Chance", "Window"]


@dataclass(frozen=True, kw_only=True)
class Window(Fault):
    """Active from `at` (default 0) for `for`, or until `until`, or for ever."""

    at: int | None = param(DURATION)
    for_: int | None = param(DURATION, key="for")
    until: int | None = param(DURATION)

    def active(self, t: int) -> bool:
        start = self.at or 0
        if t < start:
            return False
        if self.for_ is not None:
            return t < start + self.for_
        if self.until is not None:
            return t < self.until
        return True

    def heal_time(self) -> int | None:
        """When the window closes (None: never)."""
        if self.for_ is not None:
            return (self.at or 0) + self.for_
        return self.until


@dataclass(frozen=True, kw_only=True)
class Chance(Fault):
    """Applies with probability `p` (default 1), drawn from the RNG the injector passes in."""

    p: float | None = param(PROBABILITY)

    def fires(self, rng: random.Random) -> bool:
        p = 1.0 if self.p is None else self.p
        return p >= 1.0 or (p > 0.0 and rng.random() < p)
