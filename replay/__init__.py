"""The replayer: deterministic virtual-time re-execution with faults, invariants and reports.

Names are imported on first use: the pytest plugin lives in this package, and importing it
(which pytest does in every run of every project that has edgetrace installed) must not
pull in numpy, onnxruntime or the agent runtime.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from edgetrace.replay._divergence import Divergence
    from edgetrace.replay._invariants import (
        FunctionInvariant,
        History,
        Invariant,
        Violation,
        parse_invariant,
    )
    from edgetrace.replay._loop import VirtualLoop, run_virtual
    from edgetrace.replay._replayer import Replayer, replay_session
    from edgetrace.replay._report import ReplayReport, TraceReport
    from edgetrace.replay._sim import ReplayRun, SimGrid
    from edgetrace.replay._substitutions import parse_substitutions
    from edgetrace.replay._world import SimWorld
    from edgetrace.replay.faults import Fault, FaultInjector, FaultKind, FaultPlan, PlanInjector

_LAZY = {
    "Divergence": "edgetrace.replay._divergence",
    "Fault": "edgetrace.replay.faults",
    "FaultInjector": "edgetrace.replay.faults",
    "FaultKind": "edgetrace.replay.faults",
    "FaultPlan": "edgetrace.replay.faults",
    "PlanInjector": "edgetrace.replay.faults",
    "FunctionInvariant": "edgetrace.replay._invariants",
    "History": "edgetrace.replay._invariants",
    "Invariant": "edgetrace.replay._invariants",
    "parse_invariant": "edgetrace.replay._invariants",
    "Violation": "edgetrace.replay._invariants",
    "VirtualLoop": "edgetrace.replay._loop",
    "run_virtual": "edgetrace.replay._loop",
    "Replayer": "edgetrace.replay._replayer",
    "parse_substitutions": "edgetrace.replay._substitutions",
    "replay_session": "edgetrace.replay._replayer",
    "ReplayReport": "edgetrace.replay._report",
    "TraceReport": "edgetrace.replay._report",
    "ReplayRun": "edgetrace.replay._sim",
    "SimGrid": "edgetrace.replay._sim",
    "SimWorld": "edgetrace.replay._world",
}

__all__ = [
    "Divergence",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "FunctionInvariant",
    "History",
    "Invariant",
    "PlanInjector",
    "ReplayReport",
    "ReplayRun",
    "Replayer",
    "SimGrid",
    "SimWorld",
    "TraceReport",
    "Violation",
    "VirtualLoop",
    "parse_invariant",
    "parse_substitutions",
    "replay_session",
    "run_virtual",
]


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgetrace.replay' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
