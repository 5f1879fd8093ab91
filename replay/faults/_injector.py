"""Fault injection, the seam between the simulator and what breaks.

The simulator asks an injector plain questions — what becomes of this message, what does
this node's clock read, what happens to this model step — and never looks at a plan itself.
`FaultInjector` answers "nothing" to all of them (a world with no faults, and the base for
test twins); `PlanInjector` answers from a `FaultPlan`, drawing from per-node fault RNGs
seeded by (seed, node), so adding a fault never shifts the draws of the app's own `ctx.rng`
and the same seed draws the same faults.

Given a list to `log`, a `PlanInjector` notes every occurrence of a fault — this message
dropped, that one delayed by 2,000 ms, this node's clock skewed, that model step emptied —
as an `Occurrence`: which fault, where (the step's causal position), what it did.
`OccurrenceInjector` replays a chosen subset of such a log and nothing else, drawing nothing:
removing one occurrence cannot shift the draws of the others, which is what lets
minimisation (`replay/_ddmin.py`) take a failure apart occurrence by occurrence.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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

__all__ = ["FaultInjector", "Occurrence", "OccurrenceInjector", "PlanInjector"]


@dataclass(frozen=True)
class Occurrence:
    """One application of one fault of a plan.

    `where` identifies the place so that a later replay finds it again: for a message, the
    sending step's causal position (else its link, kind, topic and how many such messages the
    node sent before); for a step fault, the step's position; for a clock, the node; for a
    crash or pause, the event. `effect` is what it did there (a message: the delay added in
    ns, the copies' offsets after it, whether it was lost), so it is re-applied, not re-drawn.
    """

    fault: int  # index of the fault in the plan
    spec: str
    hook: str  # "message", "clock", "node", "model", "rule_timeout", "state_unavailable"
    where: tuple[Any, ...]
    effect: tuple[Any, ...] = ()
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.spec, "what": self.text}


def _message_place(msg: MessageFacts, sent: dict[tuple[str, str, str, str], int]) -> tuple[Any, ...]:
    if msg.step is not None:
        return ("step", *msg.step)
    slot = (msg.src, msg.dst, msg.op, msg.topic)
    sent[slot] = sent.get(slot, 0) + 1
    return ("link", *slot, sent[slot])


def _step_place(hook: str, node: str, what: str, step: Any,
                asked: dict[tuple[str, str, str], int]) -> tuple[Any, ...]:
    if step is not None:
        return ("step", *step)
    slot = (hook, node, what)
    asked[slot] = asked.get(slot, 0) + 1
    return ("ask", node, what, asked[slot])


def _describe_message(msg: MessageFacts, effect: tuple[Any, ...]) -> str:
    delta, copies, dropped = effect
    what = "dropped" if dropped else (f"duplicated ×{len(copies) + 1}" if copies else f"delayed {delta / 1e6:+.0f} ms")
    trace = f"{msg.step[0]} " if msg.step else ""
    step = f" ({trace}step {msg.step[2]} {msg.step[3]} #{msg.step[4]})" if msg.step else ""
    return f"{msg.op} {msg.src}→{msg.dst}{step} {what}"


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

    def model(self, node: str, model: str, at: int, step: Any = None) -> ModelFaultEffect | None:
        """The fault of one infer step (`step`: its causal position, when the caller knows it)."""
        return None

    def rule_timeout(self, node: str, policy: str, at: int, step: Any = None) -> Fault | None:
        return None

    def state_refusal(self, node: str, op: str, key: str, at: int, step: Any = None) -> Fault | None:
        return None


class PlanInjector(FaultInjector):
    """Answers from a fault plan under a seed."""

    def __init__(self, plan: FaultPlan, seed: int, *, log: list[Occurrence] | None = None) -> None:
        self.plan = plan
        self.seed = seed
        self.log = log
        self._sent: dict[tuple[str, str, str, str], int] = {}
        self._asked: dict[tuple[str, str, str], int] = {}
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
            self._note(event.source, "node", (event.node, event.action, event.at, event.until), (),
                       f"{event.action} {event.node} at {event.at / 1e9:g}s"
                       + (f" until {event.until / 1e9:g}s" if event.until is not None else ""))

    def _note(self, index: int, hook: str, where: tuple[Any, ...], effect: tuple[Any, ...], text: str) -> None:
        if self.log is not None:
            self.log.append(Occurrence(index, str(self.plan.faults[index]), hook, where, effect, text))

    def rng(self, node: str) -> random.Random:
        rng = self._rngs.get(node)
        if rng is None:
            rng = self._rngs[node] = random.Random(f"{self.seed}/faults/{node}")
        return rng

    def message(self, msg: MessageFacts) -> list[int]:
        fate = Fate(msg.base_delay)
        rng = self.rng(msg.src)
        place = _message_place(msg, self._sent) if self.log is not None else ()
        for fault in self._messages:
            if fault.hits(msg) and fault.fires(rng):
                delay, copies = fate.delay, len(fate.copies)
                fault.affect(fate, msg, rng)
                self._count(fault)
                if self.log is not None:
                    effect = (fate.delay - delay, tuple(c - fate.delay for c in fate.copies[copies:]), fate.dropped)
                    self._note(self._index[id(fault)], "message", place, effect, _describe_message(msg, effect))
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
                    self._note(mark[0], "clock", (node,), (), f"{node}'s clock: {fault}")
        return t

    def node_events(self, nodes: list[str]) -> list[NodeEvent]:
        found = [dataclasses.replace(event, source=self._index[id(fault)])
                 for node in nodes for fault in self.plan.of(NodeFault)
                 if fnmatch.fnmatchcase(node, fault.node) for event in fault.events(node)]
        return sorted(found, key=lambda e: (e.node, e.action, e.at, e.until or 0))

    def _place(self, hook: str, node: str, what: str, step: Any) -> tuple[Any, ...]:
        return _step_place(hook, node, what, step, self._asked) if self.log is not None else ()

    def _step(self, fault: Fault, hook: str, node: str, what: str, step: Any, place: tuple[Any, ...]) -> None:
        self._count(fault)
        if self.log is not None:
            at = f" ({step[0]} #{step[4]})" if step is not None else ""
            self._note(self._index[id(fault)], hook, place, (), f"{hook} on {node}: {what}{at}")

    def model(self, node: str, model: str, at: int, step: Any = None) -> ModelFaultEffect | None:
        place = self._place("model", node, model, step)
        for fault in self.plan.of(ModelFault):
            if fault.matches(node, model, at) and fault.fires(self.rng(node)):
                self._step(fault, "model", node, model, step, place)
                return fault.effect()
        return None

    def rule_timeout(self, node: str, policy: str, at: int, step: Any = None) -> Fault | None:
        place = self._place("rule_timeout", node, policy, step)
        for fault in self.plan.of(RuleTimeout):
            if fault.matches(node, policy, at) and fault.fires(self.rng(node)):
                self._step(fault, "rule_timeout", node, policy, step, place)
                return fault
        return None

    def state_refusal(self, node: str, op: str, key: str, at: int, step: Any = None) -> Fault | None:
        place = self._place("state_unavailable", node, f"{op} {key}", step)
        for fault in self.plan.of(StateUnavailable):
            if fault.matches(node, op, key, at) and fault.fires(self.rng(node)):
                self._step(fault, "state_unavailable", node, f"{op} {key}", step, place)
                return fault
        return None


class OccurrenceInjector(FaultInjector):
    """Applies exactly the chosen occurrences of a plan's log, as they were applied, and no other
    fault: nothing is drawn, so each occurrence stays what it was whatever else is left out."""

    def __init__(self, plan: FaultPlan, chosen: Iterable[Occurrence]) -> None:
        self.plan = plan
        self.chosen = list(chosen)
        self._applied = [0] * len(plan.faults)
        self._by_place: dict[tuple[str, tuple[Any, ...]], list[Occurrence]] = {}
        for occ in self.chosen:
            self._by_place.setdefault((occ.hook, occ.where), []).append(occ)
        self._sent: dict[tuple[str, str, str, str], int] = {}
        self._asked: dict[tuple[str, str, str], int] = {}
        self._clocked: set[tuple[int, str]] = set()

    def counts(self) -> list[tuple[str, int]]:
        return [(str(f), n) for f, n in zip(self.plan.faults, self._applied, strict=True)]

    def _take(self, hook: str, where: tuple[Any, ...]) -> list[Occurrence]:
        found = self._by_place.get((hook, where), [])
        for occ in found:
            self._applied[occ.fault] += 1
        return found

    def message(self, msg: MessageFacts) -> list[int]:
        fate = Fate(msg.base_delay)
        for occ in self._take("message", _message_place(msg, self._sent)):
            delta, copies, dropped = occ.effect
            if dropped:
                fate.dropped = True
                break
            fate.delay = max(0, fate.delay + delta)
            fate.copies += [fate.delay + c for c in copies]
        return fate.delays()

    def local_time(self, node: str, true_ns: int) -> int:
        t = true_ns
        for occ in self._by_place.get(("clock", (node,)), []):
            fault = self.plan.faults[occ.fault]
            assert isinstance(fault, ClockFault)
            t = fault.adjust(true_ns, t)
            if (occ.fault, node) not in self._clocked:
                self._clocked.add((occ.fault, node))
                self._applied[occ.fault] += 1
        return t

    def node_events(self, nodes: list[str]) -> list[NodeEvent]:
        found = [NodeEvent(occ.where[2], occ.where[0], occ.where[1], occ.where[3], source=occ.fault)
                 for occ in self.chosen if occ.hook == "node" and occ.where[0] in nodes]
        return sorted(found, key=lambda e: (e.node, e.action, e.at, e.until or 0))

    def happened(self, event: NodeEvent) -> None:
        if event.source >= 0:
            self._applied[event.source] += 1

    def _fault(self, hook: str, node: str, what: str, step: Any) -> Fault | None:
        found = self._take(hook, _step_place(hook, node, what, step, self._asked))
        return self.plan.faults[found[0].fault] if found else None

    def model(self, node: str, model: str, at: int, step: Any = None) -> ModelFaultEffect | None:
        fault = self._fault("model", node, model, step)
        return fault.effect() if isinstance(fault, ModelFault) else None

    def rule_timeout(self, node: str, policy: str, at: int, step: Any = None) -> Fault | None:
        return self._fault("rule_timeout", node, policy, step)

    def state_refusal(self, node: str, op: str, key: str, at: int, step: Any = None) -> Fault | None:
        return self._fault("state_unavailable", node, f"{op} {key}", step)


def choose(log: Sequence[Occurrence], numbers: Iterable[int]) -> list[Occurrence]:
    """The occurrences of `log` with these 0-based numbers (as `--occurrences` lists them)."""
    from edgetrace._errors import UsageError

    chosen = []
    for n in sorted(set(numbers)):
        if not 0 <= n < len(log):
            raise UsageError(f"--occurrences: no occurrence {n}; this plan and seed make {len(log)} "
                             f"(numbered 0..{len(log) - 1})")
        chosen.append(log[n])
    return chosen
