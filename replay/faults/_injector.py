"""Fault injection, the seam between the simulator and what breaks.

The simulator asks an injector plain questions — what becomes of this message, what does
this node's clock read, what happens to this model step — and never looks at a plan itself.
`FaultInjector` answers "nothing" to all of them (a world with no faults, and the base for
test twins); `PlanInjector` answers from a `FaultPlan`, drawing from per-node fault RNGs
seeded by (seed, node), so adding a fault never shifts the draws of the app's own `ctx.rng`
and the same seed draws the same faults.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import random

from edgetrace.replay.faults._base import Fault
from edgetrace.replay.faults._clock import ClockFault
from edgetrace.replay.faults._network import Fate, MessageFacts, MessageFault
from edgetrace.replay.faults._node import NodeEvent, NodeFault
from edgetrace.replay.faults._plan import FaultPlan
from edgetrace.replay.faults._steps import (
    ModelFault,
    ModelFaultEffect,
    RuleTimeout,
    StateUnavailable,
)

__all__ = ["FaultInjector", "PlanInjector"]


class FaultInjector:
    """Injects nothing: every answer is "as recorded". Subclass to script faults in a test."""

    def message(self, msg: MessageFacts) -> list[int]:
        """Delivery delays (ns) of one message: [] lost, several for duplicates."""
        return [msg.base_delay]

    def local_time(self, node: str, true_ns: int) -> int:
        return true_ns

    def node_events(self, nodes: list[str]) -> list[NodeEvent]:
        """Crashes and pauses to schedule, in time order."""
        return []

    def happened(self, event: NodeEvent) -> None:
        """A scheduled node event took place (counted as an application of its fault)."""

    def counts(self) -> list[tuple[str, int]]:
        """(fault spec, how many times it applied), in plan order."""
        return []

    def model(self, node: str, model: str, at: int) -> ModelFaultEffect | None:
        return None

    def rule_timeout(self, node: str, policy: str, at: int) -> Fault | None:
        return None

    def state_refusal(self, node: str, op: str, key: str, at: int) -> Fault | None:
        return None


class PlanInjector(FaultInjector):
    """Answers from a fault plan under a seed."""

    def __init__(self, plan: FaultPlan, seed: int) -> None:
        self.plan = plan
        self.seed = seed
        self._rngs: dict[str, random.Random] = {}
        self._index = {id(f): i for i, f in enumerate(plan.faults)}
        self._applied = [0] * len(plan.faults)
        self._clocked: set[tuple[int, str]] = set()
        self._messages = sorted(plan.of(MessageFault), key=lambda f: f.stage)  # stable: plan order within a stage
        self._clocks = sorted(plan.of(ClockFault), key=lambda f: f.stage)

    def _count(self, fault: Fault) -> None:
        self._applied[self._index[id(fault)]] += 1

    def counts(self) -> list[tuple[str, int]]:
        return [(str(f), n) for f, n in zip(self.plan.faults, self._applied, strict=True)]

    def happened(self, event: NodeEvent) -> None:
        if event.source >= 0:
            self._applied[event.source] += 1

    def rng(self, node: str) -> random.Random:
        rng = self._rngs.get(node)
        if rng is None:
            rng = self._rngs[node] = random.Random(f"{self.seed}/faults/{node}")
        return rng

    def message(self, msg: MessageFacts) -> list[int]:
        fate = Fate(msg.base_delay)
        rng = self.rng(msg.src)
        for fault in self._messages:
            if fault.hits(msg) and fault.fires(rng):
                fault.affect(fate, msg, rng)
                self._count(fault)
                if fate.dropped:
                    break
        return fate.delays()

    def local_time(self, node: str, true_ns: int) -> int:
        t = true_ns
        for fault in self._clocks:
            if fnmatch.fnmatchcase(node, fault.node):
                t = fault.adjust(true_ns, t)
                mark = (self._index[id(fault)], node)
                if mark not in self._clocked:  # a clock fault applies once per node it skews
                    self._clocked.add(mark)
                    self._count(fault)
        return t

    def node_events(self, nodes: list[str]) -> list[NodeEvent]:
        found = [dataclasses.replace(event, source=self._index[id(fault)])
                 for node in nodes for fault in self.plan.of(NodeFault)
                 if fnmatch.fnmatchcase(node, fault.node) for event in fault.events(node)]
        return sorted(found, key=lambda e: (e.node, e.action, e.at, e.until or 0))

    def model(self, node: str, model: str, at: int) -> ModelFaultEffect | None:
        for fault in self.plan.of(ModelFault):
            if fault.matches(node, model, at) and fault.fires(self.rng(node)):
                self._count(fault)
                return fault.effect()
        return None

    def rule_timeout(self, node: str, policy: str, at: int) -> Fault | None:
        for fault in self.plan.of(RuleTimeout):
            if fault.matches(node, policy, at) and fault.fires(self.rng(node)):
                self._count(fault)
                return fault
        return None

    def state_refusal(self, node: str, op: str, key: str, at: int) -> Fault | None:
        for fault in self.plan.of(StateUnavailable):
            if fault.matches(node, op, key, at) and fault.fires(self.rng(node)):
                self._count(fault)
                return fault
        return None
