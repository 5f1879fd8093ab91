"""Node faults: a node stops — crashes (and maybe restarts) or pauses (and resumes).

Each kind turns into timed lifecycle events that the simulator carries out on the node.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgetrace.replay.faults._base import Fault, param, register
from edgetrace.replay.faults._params import DURATION, glob
from edgetrace.replay.faults._scope import Window

__all__ = ["Crash", "NodeEvent", "NodeFault", "Pause"]


@dataclass(frozen=True, order=True)
class NodeEvent:
    """At `at` (ns), `action` happens to `node` until `until` (None: a crash with no restart)."""

    at: int
    node: str
    action: str  # "crash" or "pause"
    until: int | None
    source: int = -1  # which fault of the plan it comes from (its index)


@dataclass(frozen=True, kw_only=True)
class NodeFault(Fault):
    node: str = param(glob("node"), required=True)

    def events(self, node: str) -> list[NodeEvent]:
        raise NotImplementedError


@register
@dataclass(frozen=True, kw_only=True)
class Crash(NodeFault):
    name = "crash"
    keys = ("node", "at", "restart")
    at: int = param(DURATION, required=True)
    restart: int | None = param(DURATION)

    def events(self, node: str) -> list[NodeEvent]:
        return [NodeEvent(self.at, node, "crash", self.restart)]


@register
@dataclass(frozen=True, kw_only=True)
class Pause(NodeFault, Window):
    name = "pause"
    keys = ("node", "at", "for", "until")
    at: int = param(DURATION, required=True)

    def events(self, node: str) -> list[NodeEvent]:
        end = self.heal_time()
        return [NodeEvent(self.at, node, "pause", end if end is not None else self.at)]
