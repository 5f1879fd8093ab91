"""Faults a replay can inject: the catalogue of kinds, plans, and the injector seam.

    spec text / TOML ──_plan──► FaultPlan of typed faults (one class per kind, by family:
    _network, _node, _steps, _clock) ──PlanInjector──► answers the simulator's questions

docs/faults.md has the grammar and an example of every kind.
"""

from edgetrace.replay.faults._base import REGISTRY, Fault, Param
from edgetrace.replay.faults._catalogue import FaultKind
from edgetrace.replay.faults._clock import ClockFault, Drift, Skew
from edgetrace.replay.faults._injector import (
    FaultInjector,
    Occurrence,
    OccurrenceInjector,
    PlanInjector,
)
from edgetrace.replay.faults._network import (
    Bandwidth,
    Drop,
    Duplicate,
    Fate,
    Jitter,
    Latency,
    MessageFacts,
    MessageFault,
    NetworkFault,
    Partition,
    Reorder,
)
from edgetrace.replay.faults._node import Crash, NodeEvent, NodeFault, Pause
from edgetrace.replay.faults._params import parse_duration
from edgetrace.replay.faults._plan import FaultPlan, parse_fault, parse_specs
from edgetrace.replay.faults._steps import (
    ModelFault,
    ModelFaultEffect,
    RuleTimeout,
    StateUnavailable,
)

__all__ = [
    "REGISTRY",
    "Bandwidth",
    "ClockFault",
    "Crash",
    "Drift",
    "Drop",
    "Duplicate",
    "Fate",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "Jitter",
    "Latency",
    "MessageFacts",
    "MessageFault",
    "ModelFault",
    "ModelFaultEffect",
    "NetworkFault",
    "NodeEvent",
    "NodeFault",
    "Occurrence",
    "OccurrenceInjector",
    "Param",
    "Partition",
    "Pause",
    "PlanInjector",
    "Reorder",
    "RuleTimeout",
    "Skew",
    "StateUnavailable",
    "parse_duration",
    "parse_fault",
    "parse_specs",
]
