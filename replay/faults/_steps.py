"""Step faults: a model misbehaves, a policy times out, the state store refuses.

Each applies to steps on nodes matching `node` (default all), in a time window, with
probability `p` drawn from that node's fault RNG.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from edgetrace._errors import FaultSpecError
from edgetrace.replay.faults._base import param, register
from edgetrace.replay.faults._params import COUNT, DURATION, MODEL_MODES, POSITIVE, choice, glob
from edgetrace.replay.faults._scope import Chance, Window

__all__ = ["ModelFault", "ModelFaultEffect", "RuleTimeout", "StateUnavailable", "StepFault"]

_WINDOW = ("at", "for", "until", "p")


@dataclass(frozen=True, kw_only=True)
class StepFault(Window, Chance):
    node: str | None = param(glob("node"))

    def on_node(self, node: str) -> bool:
        return self.node is None or fnmatch.fnmatchcase(node, self.node)


@dataclass(frozen=True)
class ModelFaultEffect:
    """What an injected model fault does to one infer step."""

    mode: str
    factor: float
    extra_ns: int
    tokens: int
    spec: str


@register
@dataclass(frozen=True, kw_only=True)
class ModelFault(StepFault):
    """`model(name=..., fault=error|empty_output|truncated_output|slow)`."""

    name = "model"
    keys = ("name", "fault", "factor", "delay", "tokens", "node", *_WINDOW)
    model: str | None = param(glob("model"), key="name")
    fault: str = param(choice(MODEL_MODES, "fault"), required=True)
    factor: float | None = param(POSITIVE)
    delay: int | None = param(DURATION)
    tokens: int | None = param(COUNT)

    def matches(self, node: str, model: str, at: int) -> bool:
        return self.on_node(node) and fnmatch.fnmatchcase(model, self.model or "*") and self.active(at)

    def effect(self) -> ModelFaultEffect:
        default_factor = 1.0 if self.delay is not None else 10.0
        return ModelFaultEffect(self.fault, float(self.factor if self.factor is not None else default_factor),
                                int(self.delay or 0), int(self.tokens if self.tokens is not None else 2), str(self))


@register
@dataclass(frozen=True, kw_only=True)
class RuleTimeout(StepFault):
    name = "rule_timeout"
    keys = ("policy", "node", *_WINDOW)
    policy: str | None = param(glob("policy"))

    def matches(self, node: str, policy: str, at: int) -> bool:
        return self.on_node(node) and fnmatch.fnmatchcase(policy, self.policy or "*") and self.active(at)


@register
@dataclass(frozen=True, kw_only=True)
class StateUnavailable(StepFault):
    name = "state_unavailable"
    keys = ("op", "key", "node", *_WINDOW)
    op: str | None = param(glob("op"))
    key: str | None = param(glob("key"))

    def check(self, spec: str) -> None:
        if self.op is not None and not fnmatch.fnmatchcase("state.get", self.op) \
                and not fnmatch.fnmatchcase("state.put", self.op):
            raise FaultSpecError(f"state_unavailable: op {self.op!r} in {spec!r} matches neither state.get nor "
                                 "state.put", spec=spec, token=self.op)

    def matches(self, node: str, op: str, key: str, at: int) -> bool:
        return (self.on_node(node) and fnmatch.fnmatchcase(op, self.op or "state.*")
                and fnmatch.fnmatchcase(key, self.key or "*") and self.active(at))
