"""Clock faults: a node's local clock reads wrong. Causal order (vector clocks) is untouched.

The node's timestamps and everything its handlers read from `ctx.now()` move; the order in
which things happen does not. Drift applies first (proportional to true time), then skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edgetrace.replay.faults._base import Fault, param, register
from edgetrace.replay.faults._params import NUMBER, SIGNED_DURATION, glob

__all__ = ["ClockFault", "Drift", "Skew"]


@dataclass(frozen=True, kw_only=True)
class ClockFault(Fault):
    stage: ClassVar[int]
    node: str = param(glob("node"), required=True)

    def adjust(self, true_ns: int, local_ns: int) -> int:
        raise NotImplementedError


@register
@dataclass(frozen=True, kw_only=True)
class Skew(ClockFault):
    """The node's clock reads `offset` ahead (or behind, when negative)."""

    name = "skew"
    keys = ("node", "offset")
    stage = 1
    offset: int = param(SIGNED_DURATION, required=True)

    def adjust(self, true_ns: int, local_ns: int) -> int:
        return local_ns + self.offset


@register
@dataclass(frozen=True, kw_only=True)
class Drift(ClockFault):
    """The node's clock runs `ppm` parts per million fast (or slow, when negative)."""

    name = "drift"
    keys = ("node", "ppm")
    stage = 0
    ppm: float = param(NUMBER, required=True)

    def adjust(self, true_ns: int, local_ns: int) -> int:
        return local_ns + int(true_ns * self.ppm / 1e6)
